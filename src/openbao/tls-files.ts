/**
 * The PEM files of a TLS connection to OpenBao (a private CA, and a client certificate and
 * key), and their reading into agent options. Shared by the JSON client's connection
 * (connect.ts) and the snapshot transfers (snapshot.ts), so both read them the same way.
 */
import { readFileSync } from 'node:fs';
import { readPrivateFileSync } from '../config/private-file.js';

export interface OpenBaoTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

export function readTlsFiles(tls: OpenBaoTlsFiles) {
  return {
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
    ...(tls.keyFile ? { key: readPrivateFileSync(tls.keyFile, 'openbao.tls.keyFile') } : {}),
  };
}
