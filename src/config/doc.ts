// Renders the settings schema as `--help` text and as the README's flags table, so both follow the schema.

import { envOf, flagOf, settingNames, settings, type SettingName } from './schema.js';

function defaultText(name: SettingName): string {
  const setting = settings[name];
  if (setting.defaultDoc !== undefined) return setting.defaultDoc;
  if (setting.isSwitch) return 'false';
  return setting.default === null ? 'unset' : String(setting.default);
}

function flagText(name: SettingName): string {
  const setting = settings[name];
  if (!setting.hasFlag) return '(environment only)';
  return setting.isSwitch ? `--${flagOf(name)}` : `--${flagOf(name)} ${setting.shape}`;
}

function docText(name: SettingName): string {
  const setting = settings[name];
  return setting.later === undefined ? setting.doc : `${setting.doc} Validated now; takes effect with ${setting.later}.`;
}

/** The option list of `driftdb serve --help`. */
export function formatFlagsHelp(): string {
  return settingNames
    .map((name) => `  ${flagText(name)}\n      ${envOf(name)}, default ${defaultText(name)}\n      ${docText(name)}`)
    .join('\n');
}

/** Escapes what Markdown would read as a cell border or an HTML tag. */
function markdownCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The README's flags table (Markdown); test/config.test.ts checks that the README holds exactly this. */
export function formatFlagsMarkdown(): string {
  const rows = settingNames.map((name) => {
    const flag = settings[name].hasFlag ? `\`${flagText(name)}\`` : flagText(name);
    const cells = [flag, `\`${envOf(name)}\``, defaultText(name), docText(name)];
    return `| ${cells.map(markdownCell).join(' | ')} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
