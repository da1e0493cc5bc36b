/*
 * delay_relay.c — a slow network for bench/run: a UDP relay on loopback
 * that holds every datagram DELAY_MS milliseconds in each direction
 * (2 x DELAY_MS added to each round trip).
 *
 *   delay_relay SERVER_PORT DELAY_MS
 * prints the port it listens on (127.0.0.1), then runs until killed.
 *
 * Each client address (IP and port: every socket of a client) gets its own
 * upstream socket connected to the server, so that replies find their way
 * back; queries and replies wait in one FIFO (a constant delay keeps it in
 * order of due time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "measure.h"

#define QMAX (1 << 16)
#define FDMAX (1 << 20)

typedef struct pkt {
  double due;
  int fd;                  /* send on this socket ... */
  unsigned short to_port;  /* ... to this client port, or 0: connected */
  size_t len;
  unsigned char data[];
} pkt;

static pkt *queue[QMAX];
static size_t qhead, qtail;
static int up_of_port[65536];          /* client port -> upstream fd + 1 */
static unsigned short *port_of_fd;     /* upstream fd -> client port */

static void enqueue(double due, int fd, unsigned short to_port,
                    const unsigned char *data, size_t len)
{
  pkt *p;
  if (qtail - qhead == QMAX)
    return; /* full: dropped, like a congested link */
  p = malloc(sizeof *p + len);
  if (!p)
    return;
  p->due = due;
  p->fd = fd;
  p->to_port = to_port;
  p->len = len;
  memcpy(p->data, data, len);
  queue[qtail++ % QMAX] = p;
}

int main(int argc, char **argv)
{
  struct sockaddr_in srv, lis, from;
  socklen_t sl;
  struct epoll_event ev, evs[64];
  struct rlimit rl;
  unsigned char buf[65536];
  double delay;
  int lfd, ep;

  if (argc < 3) {
    fprintf(stderr, "usage: delay_relay SERVER_PORT DELAY_MS\n");
    return 64;
  }
  delay = atof(argv[2]) / 1000.0;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  port_of_fd = calloc(FDMAX, sizeof *port_of_fd);
  memset(&srv, 0, sizeof srv);
  srv.sin_family = AF_INET;
  srv.sin_port = htons((unsigned short)atoi(argv[1]));
  srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  lis = srv;
  lis.sin_port = 0;
  lfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  ep = epoll_create1(0);
  if (!port_of_fd || lfd < 0 || ep < 0 ||
      bind(lfd, (struct sockaddr *)&lis, sizeof lis) != 0) {
    perror("delay_relay");
    return 1;
  }
  {
    int big = 8 << 20;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  sl = sizeof lis;
  getsockname(lfd, (struct sockaddr *)&lis, &sl);
  printf("%u\n", (unsigned)ntohs(lis.sin_port));
  fflush(stdout);
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  for (;;) {
    double t = now();
    int ms = -1, n, i;
    while (qhead != qtail && queue[qhead % QMAX]->due <= t) {
      pkt *p = queue[qhead++ % QMAX];
      if (p->to_port) {
        struct sockaddr_in to = srv;
        to.sin_port = htons(p->to_port);
        (void)sendto(p->fd, p->data, p->len, 0, (struct sockaddr *)&to,
                     sizeof to);
      } else {
        (void)send(p->fd, p->data, p->len, 0);
      }
      free(p);
    }
    if (qhead != qtail)
      ms = (int)((queue[qhead % QMAX]->due - t) * 1000.0) + 1;
    n = epoll_wait(ep, evs, 64, ms);
    t = now();
    for (i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      for (;;) {
        ssize_t len;
        sl = sizeof from;
        len = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &sl);
        if (len < 0)
          break;
        if (fd == lfd) { /* a query: forward on the client's upstream */
          unsigned short port = ntohs(from.sin_port);
          int up = up_of_port[port] - 1;
          if (up < 0) {
            up = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            if (up < 0 || up >= FDMAX ||
                connect(up, (struct sockaddr *)&srv, sizeof srv) != 0) {
              if (up >= 0)
                close(up);
              continue;
            }
            up_of_port[port] = up + 1;
            port_of_fd[up] = port;
            ev.events = EPOLLIN;
            ev.data.fd = up;
            epoll_ctl(ep, EPOLL_CTL_ADD, up, &ev);
          }
          enqueue(t + delay, up, 0, buf, (size_t)len);
        } else { /* a reply: back to its client */
          enqueue(t + delay, lfd, port_of_fd[fd], buf, (size_t)len);
        }
      }
    }
  }
}
