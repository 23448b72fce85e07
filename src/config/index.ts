// The configuration's public surface: load it once in the CLI, freeze it, pass it down.

export { loadConfig, type LoadOptions } from './load.js';
export { ConfigError, envOf, flagOf, settingNames, settings, type Config, type SettingName } from './schema.js';
export { formatFlagsHelp, formatFlagsMarkdown } from './doc.js';
