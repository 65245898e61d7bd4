// A tiny name server on 127.0.0.1 (random UDP port) for the nginx specs: nginx's cosockets
// resolve host names only through its `resolver` directive, never /etc/hosts. Every A
// query is answered 127.0.0.1 (TTL 60 s); other types get an empty answer (NOERROR).
//   node spec/support/dns_server.mjs      prints "<port> <pid>" once it listens
import dgram from "node:dgram";

const sock = dgram.createSocket("udp4");

// End of the (single) question section, or -1 for what this server does not parse.
function questionEnd(msg) {
	let p = 12;
	while (p < msg.length && msg[p] !== 0) {
		if (msg[p] >= 0xc0) return -1; // no compression in questions
		p += msg[p] + 1;
	}
	p += 5; // the root label, QTYPE, QCLASS
	return p <= msg.length ? p : -1;
}

sock.on("message", (msg, rinfo) => {
	if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return;
	const end = questionEnd(msg);
	if (end < 0) return;
	const qtype = msg.readUInt16BE(end - 4);
	const a = qtype === 1;
	const head = Buffer.alloc(12);
	head.writeUInt16BE(msg.readUInt16BE(0), 0); // id
	head.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x0100), 2); // response, RD copied, RA
	head.writeUInt16BE(1, 4); // one question
	head.writeUInt16BE(a ? 1 : 0, 6); // answers
	const answer = a
		? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1])
		: Buffer.alloc(0);
	sock.send(Buffer.concat([head, msg.subarray(12, end), answer]), rinfo.port, rinfo.address);
});
sock.on("error", (err) => {
	console.error(String(err));
	process.exit(1);
});
sock.bind(0, "127.0.0.1", () => {
	process.stdout.write(`${sock.address().port} ${process.pid}\n`);
});
