/* LD_PRELOAD shim for the rivetkit 2.3 actor host (Node): sets TCP_NODELAY on
 * every TCP socket before connect(). rivetkit 2.3.19 opens its envoy
 * WebSocket to the engine with Nagle enabled, which adds ~40 ms (Nagle +
 * delayed ACK) to most requests; see docs protocol.md section 15.
 * Test servers only. Built by scripts/servers.sh into the server's temp dir:
 *   gcc -shared -fPIC -O2 -o nodelay.so nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static connect_fn real_connect;
	if (!real_connect)
		real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
	if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
		int type = 0;
		socklen_t tlen = sizeof type;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
		    type == SOCK_STREAM) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		}
	}
	return real_connect(fd, addr, len);
}
