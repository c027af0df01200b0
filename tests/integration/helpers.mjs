// Shared helpers of the integration tests: start the real kr-serve on a free
// loopback port, wait for /health, raw HTTP over node's net module.
import { spawn } from 'node:child_process';
import net from 'node:net';

const root = new URL('../../', import.meta.url).pathname;
export const bin = process.env.KR_SERVE_BIN || `${root}build/bin/kr-serve`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Sends raw bytes; resolves {status, headers, body, text} at the first complete
// response (Content-Length or chunked end) or when the peer closes (only the
// latter with untilClose).
export function raw(port, bytes, { timeoutMs = 20000, untilClose = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString('utf8');
      const h = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const headers = {};
      for (const line of text.slice(0, h).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = h >= 0 ? text.slice(h + 4) : '';
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: m ? Number(m[1]) : 0, headers, body, text });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const t = buf.toString('latin1');
      const h = t.indexOf('\r\n\r\n');
      if (h < 0 || untilClose) return;
      const cl = /content-length:\s*(\d+)/i.exec(t.slice(0, h));
      if (cl && buf.length >= h + 4 + Number(cl[1])) finish();
      if (/transfer-encoding:\s*chunked/i.test(t.slice(0, h)) && t.endsWith('\r\n0\r\n\r\n')) finish();
    });
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('connect', () => sock.write(bytes));
  });
}

function dechunk(s) {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) break;
    const n = parseInt(s.slice(i, eol), 16);
    if (!n) break;
    const b = Buffer.from(s.slice(eol + 2));
    const chunk = b.subarray(0, n).toString('utf8');
    out += chunk;
    i = eol + 2 + chunk.length + 2;
  }
  return out;
}

export function post(port, path, body, headers = {}) {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  let head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return raw(port, Buffer.concat([Buffer.from(head + '\r\n'), Buffer.from(data)]));
}

export function get(port, path, headers = {}) {
  let head = `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return raw(port, Buffer.from(head + '\r\n'));
}

// Starts kr-serve; resolves {port, proc, stderr()} once /health is 200.
export async function startServer(args = [], env = {}) {
  const port = await freePort();
  let err = '';
  const proc = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', String(port), '--kv-cache-mb', '64', ...args], {
    env: { ...process.env, KR_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => { err += d.toString(); });
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`kr-serve exited ${proc.exitCode}: ${err}`);
    const r = await get(port, '/health').catch(() => ({ status: 0 }));
    if (r.status === 200) return { port, proc, stderr: () => err };
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`kr-serve did not become healthy: ${err}`);
}

export function stopServer(s) {
  return new Promise((resolve) => {
    if (s.proc.exitCode !== null) return resolve(s.proc.exitCode);
    s.proc.on('exit', (code) => resolve(code));
    s.proc.kill('SIGTERM');
  });
}
