/**
 * Looking at baton's reports the way a CI server and a person do: JUnit XML validated against
 * test/fixtures/junit.xsd with xmllint (Debian libxml2-utils), HTML opened in headless Chromium
 * (Debian chromium). scripts/install-test-deps.sh installs both.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const JUNIT_XSD = path.resolve('test/fixtures/junit.xsd');
export const CHROMIUM = '/usr/bin/chromium';

export function requireReportTools(): void {
  for (const bin of ['/usr/bin/xmllint', CHROMIUM]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/install-test-deps.sh`);
  }
}

/** xmllint's verdict on a JUnit file: ok, or its complaints. */
export async function validateJunit(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const r = await execFileP('xmllint', ['--noout', '--schema', JUNIT_XSD, file]);
    return { ok: true, output: r.stderr };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { ok: false, output: err.stderr ?? err.message };
  }
}

function chromiumArgs(profile: string): string[] {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--window-size=1200,1000',
  ];
}

/** Open a local HTML file in headless Chromium: the DOM it rendered, and a screenshot at `png`. */
export async function openInChromium(html: string, png: string): Promise<string> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'baton-chromium-'));
  try {
    const url = `file://${path.resolve(html)}`;
    await execFileP(CHROMIUM, [...chromiumArgs(profile), `--screenshot=${png}`, url], { timeout: 60_000 });
    const dom = await execFileP(CHROMIUM, [...chromiumArgs(profile), '--dump-dom', url], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    return dom.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Opening tags of elements carrying class `cls` in serialised HTML. */
export function elementsWithClass(dom: string, cls: string): string[] {
  return [...dom.matchAll(/<[a-z]+\b[^>]*\bclass="([^"]*)"[^>]*>/g)].filter((m) => m[1]!.split(/\s+/).includes(cls)).map((m) => m[0]);
}

export function attrOf(tag: string, name: string): string | undefined {
  return new RegExp(`\\b${name}="([^"]*)"`).exec(tag)?.[1];
}
