/**
 * UTF-8 encode `s` into `buf` at `off`, returning the byte count. Short ASCII
 * strings (most topics, client ids and property names) are copied by a plain
 * loop, which beats a call into Buffer's native encoder at these sizes.
 */
export function writeUtf8(buf: Buffer, s: string, off: number): number {
  const n = s.length;
  if (n <= 64) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[off + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(s, off);
}
