/* velo-link.h: what the relay (velo-link.c) and its control socket
 * (velo-link-ctl.c) share: the state of the link and the few functions
 * each calls in the other.  See velo-link.c for the design.
 */

#ifndef VELO_LINK_H
#define VELO_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define READ_SIZE    (64 * 1024)        /* Largest single read. */
#define SEG_SIZE     (16 * 1024)        /* Largest chunk: finer pacing. */
#define MAX_BUFFERED (64 * 1024 * 1024) /* Per direction. */
#define BURST_BYTES  (2 * 1500)         /* Token bucket depth, ~2 MTUs. */
#define QUEUE_NS     (20 * 1000000LL)   /* Link queue, as time on the wire. */
#define CTL_LINE_MAX 256
#define NS           1000000000LL

struct addr {
  const char *text;                 /* As given on the command line. */
  struct sockaddr_storage ss;
  socklen_t len;
};

struct chunk {
  struct chunk *next;
  int64_t release;                  /* CLOCK_MONOTONIC ns it may leave at. */
  size_t len, off;                  /* off bytes of data[] already sent. */
  bool eof;                         /* Empty chunk standing for EOF. */
  char data[];
};

struct dir {
  struct chunk *head, *tail;
  size_t buffered;                  /* Unsent bytes in the queue. */
  bool eof_in;                      /* Source sent EOF: read no more. */
  bool eof_out;                     /* Sink got shutdown(SHUT_WR). */
  bool want_out;                    /* Sink said EAGAIN: wait for POLLOUT. */
};

enum conn_state {
  CONN_WAITING,                     /* Accepted while cut; not connected. */
  CONN_CONNECTING,                  /* Non-blocking connect in progress. */
  CONN_OPEN,
};

struct conn {
  struct conn *next;
  enum conn_state state;
  int fd[2];                        /* [0] client side, [1] server side. */
  struct dir dir[2];                /* [0] up, [1] down. */
  int pidx[2];                      /* Index in pfds this round, or -1. */
  bool dead;                        /* Closed; freed by the next sweep. */
};

/* All state of the relay.  velo-link is one thread: only the main loop
 * and the control commands it calls touch this, so it has no lock.
 */
struct relay {
  struct addr listen, connect;
  const char *control_path, *pidfile;
  int lfd, cfd;                     /* Listener, control listener. */
  int64_t delay_ns;                 /* One way, each direction. */
  uint64_t rate;                    /* bit/s per direction, 0 = unlimited. */
  int64_t vt[2];                    /* Pacer of each link direction, ns. */
  bool cut;
  int64_t cut_since;
  uint64_t bytes[2];                /* Bytes delivered up, down. */
  struct conn *conns;
  bool quit;
};

extern struct relay relay;

/* velo-link.c */

/* Print "velo-link: MESSAGE" to stderr (the --log file).  %m works. */
extern void msg (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

/* CLOCK_MONOTONIC in nanoseconds. */
extern int64_t now_ns (void);

/* Parse unix:PATH or HOST:PORT (loopback only) into a.  On failure print
 * an error naming opt and text, and return false.
 */
extern bool parse_addr (const char *opt, const char *text, struct addr *a);

/* Parse a rate in bit/s ("100m", "500k", "1.5g", "0").  Prints nothing. */
extern bool parse_rate (const char *text, uint64_t *rate);

/* Parse a delay in whole milliseconds.  Prints nothing. */
extern bool parse_delay (const char *text, int64_t *delay_ns);

/* Open the server side of conn.  On failure log it and reset conn. */
extern void conn_connect (struct conn *conn);

/* Close both sides of conn (with RST if rst) and drop its queued data.
 * conn stays on relay.conns, marked dead, until the main loop frees it.
 */
extern void conn_close (struct conn *conn, bool rst);

/* velo-link-ctl.c */

/* Serve every pending connection on the control socket: read one command
 * line, run it, answer one line.  Waits at most 0.5 s for a slow client.
 */
extern void ctl_serve (void);

/* Client mode, velo-link --ctl PATH CMD [ARG]: send one command, print the
 * answer on stdout.  Returns the exit status: 0 for "ok ...", else 1.
 */
extern int ctl_main (const char *path, int argc, char **argv);

#endif /* VELO_LINK_H */
