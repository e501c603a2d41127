/**
 * The listener's TLS certificate and key, reloaded without a restart: on request (SIGHUP,
 * from main.ts) and when a file in their directories changes. A new pair is read and
 * checked completely (PEM parses, key matches the certificate) before the server's
 * secure context is swapped; an invalid pair is logged and the old one keeps serving.
 */
import { X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { PrivateFileError, readPrivateFile, readPrivateFileSync } from '../config/private-file.js';

/** The configuration key of the listener's private key, for errors about it. */
const KEY_FILE_KEY = 'listen.tls.keyFile';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** For the log: public facts about the leaf certificate. */
  readonly summary: { readonly fingerprint256: string; readonly validTo: string };
}

/** A reason safe to log: an errno or OpenSSL code, never file content. */
function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown error';
}

/** An unusable pair; the message holds only an OpenSSL or errno code. */
export class TlsPairError extends Error {
  override readonly name = 'TlsPairError';
}

/** Throws TlsPairError when the pair is unusable. */
export function checkTlsPair(cert: Buffer, key: Buffer): TlsPair {
  try {
    // Parses both and checks that the key belongs to the certificate.
    createSecureContext({ cert, key });
    const leaf = new X509Certificate(cert);
    return {
      cert,
      key,
      summary: { fingerprint256: leaf.fingerprint256, validTo: leaf.validTo },
    };
  } catch (error) {
    throw new TlsPairError(`invalid certificate or key (${reasonOf(error)})`);
  }
}

/** At start: read synchronously, so a bad pair stops the broker before it listens. */
export function readTlsPairSync(files: TlsFiles): TlsPair {
  return checkTlsPair(
    readFileSync(files.certFile),
    readPrivateFileSync(files.keyFile, KEY_FILE_KEY),
  );
}

export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface TlsReloadLogger {
  info(object: object, message: string): void;
  error(object: object, message: string): void;
}

export type TlsReloadResult =
  | { readonly outcome: 'applied' | 'unchanged'; readonly fingerprint256: string }
  | { readonly outcome: 'rejected'; readonly reason: string };

export interface ListenerTls {
  /** Reads and applies the files now (serialised with other reloads). */
  reload(): Promise<TlsReloadResult>;
  close(): void;
}

export function startListenerTls(
  server: SecureContextTarget,
  files: TlsFiles,
  initial: TlsPair,
  options: {
    readonly watch: boolean;
    readonly logger: TlsReloadLogger;
    readonly debounceMs?: number;
  },
): ListenerTls {
  let current = initial;
  let chain: Promise<unknown> = Promise.resolve();

  const load = async (): Promise<TlsReloadResult> => {
    let pair: TlsPair;
    try {
      const [cert, key] = await Promise.all([
        readFile(files.certFile),
        readPrivateFile(files.keyFile, KEY_FILE_KEY),
      ]);
      if (cert.equals(current.cert) && key.equals(current.key)) {
        return { outcome: 'unchanged', fingerprint256: current.summary.fingerprint256 };
      }
      pair = checkTlsPair(cert, key);
      server.setSecureContext({ cert: pair.cert, key: pair.key });
    } catch (error) {
      const reason =
        error instanceof TlsPairError || error instanceof PrivateFileError
          ? error.message
          : reasonOf(error);
      options.logger.error(
        { certFile: files.certFile, keyFile: files.keyFile, reason },
        'listener certificate reload rejected; the previous certificate keeps serving',
      );
      return { outcome: 'rejected', reason };
    }
    current = pair;
    options.logger.info(
      { certFile: files.certFile, ...pair.summary },
      'listener certificate reloaded',
    );
    return { outcome: 'applied', fingerprint256: pair.summary.fingerprint256 };
  };

  const reload = (): Promise<TlsReloadResult> => {
    const next = chain.then(load, load);
    chain = next;
    return next;
  };

  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  if (options.watch) {
    // Directories, not files: certificates are usually replaced by rename or symlink swap
    // (cert-manager, Kubernetes secret volumes), which a watch on the old file would miss.
    const dirs = new Set([path.dirname(files.certFile), path.dirname(files.keyFile)]);
    for (const dir of dirs) {
      try {
        const watcher = watch(dir, { persistent: false }, () => {
          clearTimeout(timer);
          timer = setTimeout(() => void reload(), options.debounceMs ?? 250);
          timer.unref();
        });
        watcher.on('error', (error) =>
          options.logger.error(
            { dir, reason: reasonOf(error) },
            'watching the listener certificate stopped; SIGHUP still reloads',
          ),
        );
        watchers.push(watcher);
      } catch (error) {
        options.logger.error(
          { dir, reason: reasonOf(error) },
          'cannot watch the listener certificate; SIGHUP still reloads',
        );
      }
    }
  }

  return {
    reload,
    close: () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
