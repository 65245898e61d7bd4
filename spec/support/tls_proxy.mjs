// A TCP proxy for the specs: TLS-terminating (with --cert/--key) or plain, to a target
// server. With --log FILE it appends the head (request line + headers) of every HTTP
// request and WebSocket upgrade it forwards, so specs can see what the client sent.
// Prints "<port> <pid>" once it listens (spec/support/fake.lua waits for that line).
//   node tls_proxy.mjs --target 127.0.0.1:6420 [--cert c.pem --key k.pem] [--log f]
import fs from "node:fs";
import net from "node:net";
import tls from "node:tls";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const [thost, tport] = (args.target || "127.0.0.1:6420").split(":");

const HEAD = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) [^\r\n]* HTTP\/1\.[01]\r\n[\s\S]*?\r\n\r\n/;

function onClient(client) {
	const upstream = net.connect(Number(tport), thost);
	client.setNoDelay(true);
	upstream.setNoDelay(true);
	let upgraded = false;
	client.on("data", (chunk) => {
		if (args.log && !upgraded) {
			const m = HEAD.exec(chunk.toString("latin1"));
			if (m) {
				fs.appendFileSync(args.log, m[0].replace(/\r\n\r\n$/, "\n----\n").replace(/\r\n/g, "\n"));
				if (/\nupgrade: *websocket/i.test(m[0])) upgraded = true;
			}
		}
		upstream.write(chunk);
	});
	upstream.on("data", (chunk) => client.write(chunk));
	const end = () => {
		client.destroy();
		upstream.destroy();
	};
	client.on("end", end);
	upstream.on("end", end);
	client.on("error", end);
	upstream.on("error", end);
	client.on("close", end);
	upstream.on("close", end);
}

const server = args.cert
	? tls.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, onClient)
	: net.createServer(onClient);
// a failed handshake (the client rejected our certificate) is expected in the specs
server.on("tlsClientError", () => {});
const ready = () => console.log(`${server.address().port} ${process.pid}`);
server.on("error", () => server.listen(0, "127.0.0.1", ready));
// "::" with dual stack: "localhost" may resolve to ::1 or 127.0.0.1
server.listen({ port: 0, host: "::", ipv6Only: false }, ready);
