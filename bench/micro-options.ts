// The options of the in-process micro-benchmarks (`--in-flight 32` style, integers only), parsed the same way.

/**
 * `defaults` with the `--kebab-case N` pairs of `argv` put in (camelCase names); throws on an unknown name or a value
 * that is not an integer of at least `minimum`.
 */
export function parseIntegerOptions<T extends { [K in keyof T]: number }>(argv: readonly string[], defaults: T, minimum: number): T {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof T;
    const value = Number(argv[i + 1]);
    if (!(name in options) || !Number.isSafeInteger(value) || value < minimum) throw new Error(`bad option ${argv[i]} ${argv[i + 1] ?? ''}`);
    options[name] = value as T[keyof T];
  }
  return options;
}
