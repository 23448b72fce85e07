// Debian's Chromium (apt-get install chromium), headless, driven by playwright-core: never a browser that something
// downloads. Shared by the admin-page bench scenario and the admin page's browser test, so both run it the same way.

import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

export const chromiumPath = '/usr/bin/chromium';

/** Headless, no sandbox (tests and CI run as root), and nothing that reaches out to the network by itself. */
export const chromiumArgs: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why Chromium cannot run here, or null when it can. */
export function chromiumMissing(): string | null {
  return existsSync(chromiumPath) ? null : `${chromiumPath} is missing (apt-get install -y chromium)`;
}

export interface LaunchInput {
  /** A fresh directory: the browser keeps its profile there, so no run sees another's cache or storage. */
  userDataDir: string;
  viewport: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  /** For a server with the self-signed certificate. */
  ignoreHttpsErrors?: boolean;
}

export function launchChromium(input: LaunchInput): Promise<BrowserContext> {
  return chromium.launchPersistentContext(input.userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [...chromiumArgs],
    viewport: input.viewport,
    colorScheme: input.colorScheme ?? 'light',
    ignoreHTTPSErrors: input.ignoreHttpsErrors ?? false,
    // Bounded: a browser that does not start within this long fails the run instead of hanging it.
    timeout: 60_000,
  });
}
