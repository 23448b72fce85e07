// The engine's one home for JSON, at the bottom of its layers (it imports only the kernel): values and paths,
// their order, stored documents, and fields read straight out of stored JSON text.

export * from './value.js';
export * from './order.js';
export * from './document.js';
export * from './fields.js';
