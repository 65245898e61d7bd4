// WebSocket framing for the fake servers (spec/fake/*.mjs): the accept key, the 101
// answer's head, frame heads in the three length forms (also ones announcing more than
// follows), whole unmasked frames.
import crypto from "node:crypto";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The Sec-WebSocket-Accept value for a request's Sec-WebSocket-Key. */
export function acceptKey(key) {
  return crypto.createHash("sha1").update((key || "") + GUID).digest("base64");
}

/** The head of a 101 answer with that accept value and subprotocol (none when empty). */
export function upgradeHead(accept, protocol) {
  return Buffer.from("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${accept}\r\n` + (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") + "\r\n");
}

/** A frame head: the first byte (FIN, RSV bits, opcode), the length it announces (a
 *  number, or a BigInt in the 64-bit form), the form (0: 7-bit, 1: 16-bit, 2: 64-bit;
 *  by default the shortest that fits) and the mask bit (the mask is the caller's). */
export function frameHead(first, len, form = len < 126 ? 0 : len < 65536 ? 1 : 2, masked = false) {
  const m = masked ? 0x80 : 0;
  if (form === 0) return Buffer.from([first, Number(len) | m]);
  if (form === 1) {
    const h = Buffer.alloc(4);
    h[0] = first;
    h[1] = 126 | m;
    h.writeUInt16BE(Math.min(Number(len), 65535), 2);
    return h;
  }
  const h = Buffer.alloc(10);
  h[0] = first;
  h[1] = 127 | m;
  h.writeBigUInt64BE(BigInt(len), 2);
  return h;
}

/** A whole unmasked frame: the first byte and the payload. */
export function frame(first, payload) {
  return Buffer.concat([frameHead(first, payload.length), payload]);
}

/** The head of a binary frame announcing 2^62 bytes: more than any client takes. */
export const HUGE_FRAME_HEAD = frameHead(0x82, 1n << 62n, 2);
