/* velo-link: the one WAN link emulator that Velo's tests and benchmarks share.
 *
 * It is a userspace TCP relay.  For each connection accepted on --listen it
 * opens one connection to --connect and forwards both directions after a
 * one-way delay, paced to a rate, with a bounded buffer per direction.  A
 * control socket can blackhole the link (cut/restore), reset every
 * connection, and change delay and rate while it runs.  It needs no root.
 *
 *   client --fd[0]--> [ dir[0] "up"   ] --fd[1]--> server
 *   client <--fd[0]-- [ dir[1] "down" ] <--fd[1]-- server
 *
 * dir[i] reads from fd[i] and writes to fd[1-i].  Each direction is a FIFO
 * of chunks.  A chunk of len bytes read at time t in link direction i is
 * stamped with
 *
 *   vt[i]   = max (vt[i], t - BURST/rate) + len/rate   (token bucket)
 *   release = max (t, vt[i]) + delay
 *
 * and is written once release <= now and every older chunk is written:
 * serialisation at the bottleneck, then propagation, as on the kernel
 * route (tbf, then a delay queue).  vt[i] belongs to the link, shared by
 * all connections, so N connections share one rate.  Reading in direction
 * i pauses while vt[i] > now + QUEUE_NS: the link's queue is bounded like
 * a router buffer, and surplus data waits in the senders' socket buffers,
 * so a bulk transfer cannot park seconds of data ahead of another
 * connection's small request.  Each readable connection gets one read per
 * round, which keeps the sharing roughly fair.
 * EOF travels as an empty chunk and becomes shutdown(SHUT_WR) on the far
 * side, so half-closes cross the link with the same delay as data.
 *
 * Invariants (checked by dir_ok() inside assert):
 *  - chunks leave in the order they were read, whatever delay/rate do;
 *  - dir->buffered == sum over the queue of (len - off);
 *  - nothing is read from a side once its direction holds MAX_BUFFERED
 *    bytes (backpressure), after its EOF, while the link is cut, or while
 *    the link queue of its direction is full (vt[i] >= now + QUEUE_NS).
 *
 * One thread, one ppoll() loop, no locks.  Functions that fail print their
 * error themselves and return false or -1; callers only clean up.  The
 * control socket and the --ctl client live in velo-link-ctl.c; the state
 * both files share is in velo-link.h.
 *
 * Caveat: the kernel socket buffers on both sides of the relay run at
 * loopback speed, so a sender never feels the window limits of a real long
 * fat pipe.  Check headline benchmark figures on the kernel route (see
 * README.md).
 */

#define _GNU_SOURCE

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>                 /* Also strcasecmp, with _GNU_SOURCE. */
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include "velo-link.h"

struct relay relay = { .lfd = -1, .cfd = -1 };

static volatile sig_atomic_t stop_signal;

void
msg (const char *fmt, ...)
{
  va_list ap;
  int saved = errno;                /* For %m. */

  fputs ("velo-link: ", stderr);
  errno = saved;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static void *
xmalloc (size_t n)
{
  void *p = calloc (1, n);

  if (!p) {
    msg ("calloc: %m");
    exit (EXIT_FAILURE);
  }
  return p;
}

int64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t
max64 (int64_t a, int64_t b)
{
  return a > b ? a : b;
}

/* Nanoseconds that len bytes take on the wire at the current rate. */
static int64_t
wire_ns (uint64_t len)
{
  return relay.rate ? (int64_t) (len * 8 * (uint64_t) NS / relay.rate) : 0;
}

/*---------------------------------------------------------------------------
 * Parsing addresses, rates and delays.
 */

static bool
is_loopback (const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET)
    return ntohl (((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24
      == 127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK (a) ||
      (IN6_IS_ADDR_V4MAPPED (a) && a->s6_addr[12] == 127);
  }
  return false;
}

/* Parse "unix:/path", "HOST:PORT" or "[V6]:PORT"; only loopback hosts. */
bool
parse_addr (const char *opt, const char *text, struct addr *a)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res;
  const char *colon = strrchr (text, ':');
  char host[256];
  size_t hlen;
  int r;

  a->text = text;
  if (strncmp (text, "unix:", 5) == 0) {
    struct sockaddr_un *sun = (struct sockaddr_un *) &a->ss;

    if (text[5] == '\0' || strlen (text + 5) >= sizeof sun->sun_path) {
      msg ("%s %s: unix socket path is empty or too long", opt, text);
      return false;
    }
    sun->sun_family = AF_UNIX;
    strcpy (sun->sun_path, text + 5);
    a->len = sizeof *sun;
    return true;
  }

  hlen = colon ? (size_t) (colon - text) : 0;
  if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']')
    text++, hlen -= 2;              /* [::1]:PORT */
  if (hlen == 0 || hlen >= sizeof host || colon[1] == '\0') {
    msg ("%s %s: expected unix:PATH or HOST:PORT", opt, a->text);
    return false;
  }
  memcpy (host, text, hlen);
  host[hlen] = '\0';
  r = getaddrinfo (host, colon + 1, &hints, &res);
  if (r != 0) {
    msg ("%s %s: %s", opt, a->text, gai_strerror (r));
    return false;
  }
  if (!is_loopback (res->ai_addr)) {
    msg ("%s %s: not a loopback address; velo-link relays only on this "
         "machine (use unix:PATH or 127.0.0.1:PORT)", opt, a->text);
    freeaddrinfo (res);
    return false;
  }
  memcpy (&a->ss, res->ai_addr, res->ai_addrlen);
  a->len = res->ai_addrlen;
  freeaddrinfo (res);
  return true;
}

/* Parse a rate such as "100m", "20M", "500k", "1.5g" or "0" (bit/s). */
bool
parse_rate (const char *text, uint64_t *rate)
{
  static const struct { char suffix; double mult; } units[] = {
    { 'k', 1e3 }, { 'm', 1e6 }, { 'g', 1e9 },
  };
  char *end;
  double v;
  size_t i;

  errno = 0;
  v = strtod (text, &end);
  if (errno || end == text || v < 0)
    return false;
  for (i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (*end && (*end | 0x20) == units[i].suffix) {
      v *= units[i].mult;
      end++;
      break;
    }
  }
  if (strcasecmp (end, "bit") == 0 || strcasecmp (end, "bps") == 0)
    end += 3;
  if (*end != '\0' || v > 1e12)
    return false;
  *rate = (uint64_t) v;
  return true;
}

bool
parse_delay (const char *text, int64_t *delay_ns)
{
  char *end;
  long long ms;

  errno = 0;
  ms = strtoll (text, &end, 10);
  if (errno || end == text || *end != '\0' || ms < 0 || ms > 3600 * 1000)
    return false;
  *delay_ns = ms * 1000000;
  return true;
}

/*---------------------------------------------------------------------------
 * Sockets.
 */

static void
set_nodelay (int fd, const struct addr *a)
{
  int one = 1;

  if (a->ss.ss_family != AF_UNIX)
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Close fd so that a TCP peer sees RST rather than FIN. */
static void
close_rst (int fd)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };

  if (fd == -1)
    return;
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close (fd);
}

static int
listen_on (const char *opt, struct addr *a)
{
  int fd, one = 1;
  struct stat st;
  const char *path = ((struct sockaddr_un *) &a->ss)->sun_path, *what;

  fd = socket (a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    msg ("%s %s: socket: %m", opt, a->text);
    return -1;
  }
  /* A stale socket left by an earlier run would make bind fail. */
  if (a->ss.ss_family == AF_UNIX && lstat (path, &st) == 0 &&
      S_ISSOCK (st.st_mode))
    unlink (path);
  if (a->ss.ss_family != AF_UNIX)
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  what = bind (fd, (struct sockaddr *) &a->ss, a->len) == -1 ? "bind"
    : listen (fd, SOMAXCONN) == -1 ? "listen" : NULL;
  if (what) {
    msg ("%s %s: %s: %m", opt, a->text, what);
    close (fd);
    return -1;
  }
  /* Learn the real port if the user asked for port 0. */
  getsockname (fd, (struct sockaddr *) &a->ss, &a->len);
  return fd;
}

/*---------------------------------------------------------------------------
 * Directions: queueing, pacing and delivery.
 */

/* Sanity check for assert().  Walks at most 64 chunks to stay cheap. */
static bool __attribute__ ((unused))
dir_ok (const struct dir *d)
{
  const struct chunk *c;
  size_t sum = 0, n = 0;

  if ((d->head == NULL) != (d->tail == NULL) || (d->tail && d->tail->next))
    return false;
  for (c = d->head; c && n < 64; c = c->next, n++) {
    if (c->off > c->len || (c->eof && c->len != 0))
      return false;
    sum += c->len - c->off;
  }
  return c ? sum <= d->buffered : sum == d->buffered;
}

static bool
dir_can_read (const struct dir *d)
{
  return !d->eof_in && d->buffered < MAX_BUFFERED;
}

/* Is the link's queue in direction i short enough to take more data? */
static bool
link_open (int i, int64_t now)
{
  return relay.vt[i] - now < QUEUE_NS;
}

/* Stamp and queue in dir[i] len bytes (or, if eof, an EOF) read at now. */
static void
dir_push (struct conn *conn, int i, const char *data, size_t len, bool eof,
          int64_t now)
{
  struct dir *d = &conn->dir[i];
  struct chunk *c = xmalloc (sizeof *c + len);

  relay.vt[i] = max64 (relay.vt[i], now - wire_ns (BURST_BYTES)) +
    wire_ns (len);
  c->release = max64 (now, relay.vt[i]) + relay.delay_ns;
  c->len = len;
  c->eof = eof;
  if (len)
    memcpy (c->data, data, len);
  if (d->tail)
    d->tail->next = c;
  else
    d->head = c;
  d->tail = c;
  d->buffered += len;
  assert (dir_ok (d));
}

static void
dir_pop (struct dir *d)
{
  struct chunk *c = d->head;

  d->head = c->next;
  if (!d->head)
    d->tail = NULL;
  d->buffered -= c->len - c->off;
  free (c);
}

/* Send every released chunk of dir[i] to fd[1-i].  -1 on error. */
static int
dir_flush (struct conn *conn, int i, int64_t now)
{
  struct dir *d = &conn->dir[i];
  int out = conn->fd[1 - i];
  struct chunk *c;
  ssize_t n;

  while ((c = d->head) != NULL && c->release <= now && !d->want_out) {
    if (c->eof) {
      if (shutdown (out, SHUT_WR) == -1 && errno != ENOTCONN)
        return -1;
      d->eof_out = true;
      dir_pop (d);
      continue;
    }
    n = send (out, c->data + c->off, c->len - c->off,
              MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
      d->want_out = true;
    else if (n == -1)
      return -1;
    else {
      c->off += n;
      d->buffered -= n;
      relay.bytes[i] += n;
      if (c->off == c->len)
        dir_pop (d);
    }
  }
  assert (dir_ok (d));
  return 0;
}

/*---------------------------------------------------------------------------
 * Connections.
 */

/* Close both sides; rst makes a TCP peer see RST.  Frees queued data. */
void
conn_close (struct conn *conn, bool rst)
{
  int i;

  for (i = 0; i < 2; i++) {
    if (rst)
      close_rst (conn->fd[i]);
    else if (conn->fd[i] != -1)
      close (conn->fd[i]);
    conn->fd[i] = -1;
    while (conn->dir[i].head)
      dir_pop (&conn->dir[i]);
  }
  conn->dead = true;
}

/* Open the server side of conn.  Resets conn on failure. */
void
conn_connect (struct conn *conn)
{
  int fd = socket (relay.connect.ss.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd == -1) {
    msg ("connect %s: socket: %m", relay.connect.text);
    conn_close (conn, true);
    return;
  }
  conn->fd[1] = fd;
  set_nodelay (fd, &relay.connect);
  if (connect (fd, (struct sockaddr *) &relay.connect.ss,
               relay.connect.len) == 0)
    conn->state = CONN_OPEN;
  else if (errno == EINPROGRESS)
    conn->state = CONN_CONNECTING;
  else {
    msg ("connect %s: %m", relay.connect.text);
    conn_close (conn, true);
  }
}

/* The non-blocking connect finished: did it work? */
static void
conn_connected (struct conn *conn)
{
  int err = 0;
  socklen_t len = sizeof err;

  if (getsockopt (conn->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) == -1)
    err = errno;
  if (err != 0) {
    msg ("connect %s: %s", relay.connect.text, strerror (err));
    conn_close (conn, true);
  }
  else
    conn->state = CONN_OPEN;
}

/* Read once from fd[i] into dir[i].  Errors reset the connection. */
static void
conn_read (struct conn *conn, int i, int64_t now)
{
  static char buf[READ_SIZE];
  struct dir *d = &conn->dir[i];
  size_t room = MAX_BUFFERED - d->buffered, off, seg;
  uint64_t queue = relay.rate / 8 * QUEUE_NS / NS;
  ssize_t n;

  /* On a slow link, read no more than the link queue holds. */
  if (relay.rate && queue < room)
    room = queue > SEG_SIZE ? queue : SEG_SIZE;
  n = recv (conn->fd[i], buf, room < sizeof buf ? room : sizeof buf,
            MSG_DONTWAIT);
  if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    conn_close (conn, true);        /* Usually ECONNRESET: pass it on. */
  else if (n == 0) {
    d->eof_in = true;
    dir_push (conn, i, NULL, 0, true, now);
  }
  for (off = 0; n > 0 && off < (size_t) n; off += seg) {
    seg = (size_t) n - off < SEG_SIZE ? (size_t) n - off : SEG_SIZE;
    dir_push (conn, i, buf + off, seg, false, now);
  }
}

static void
accept_conns (void)
{
  struct conn *conn;
  int fd;

  while ((fd = accept4 (relay.lfd, NULL, NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
    conn = xmalloc (sizeof *conn);
    conn->fd[0] = fd;
    conn->fd[1] = -1;
    conn->state = CONN_WAITING;
    set_nodelay (fd, &relay.listen);
    conn->next = relay.conns;
    relay.conns = conn;
    /* While cut the "SYN" is lost: the server hears of it on restore. */
    if (!relay.cut)
      conn_connect (conn);
  }
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
      errno != ECONNABORTED)
    msg ("accept %s: %m", relay.listen.text);
}

/*---------------------------------------------------------------------------
 * Main loop.
 */

static struct pollfd *pfds;         /* Rebuilt every round. */
static size_t pfds_len, pfds_cap;

/* Add fd to this round's pfds; returns its index or -1 if not polled. */
static int
poll_add (int fd, short events)
{
  if (fd == -1 || events == 0)
    return -1;
  if (pfds_len == pfds_cap) {
    pfds_cap = pfds_cap ? pfds_cap * 2 : 64;
    pfds = realloc (pfds, pfds_cap * sizeof *pfds);
    if (!pfds) {
      msg ("realloc: %m");
      exit (EXIT_FAILURE);
    }
  }
  pfds[pfds_len] = (struct pollfd) { .fd = fd, .events = events };
  return pfds_len++;
}

static short
revents (int idx)
{
  return idx == -1 ? 0 : pfds[idx].revents;
}

/* Free closed connections. */
static void
sweep (void)
{
  struct conn **cp = &relay.conns, *c;

  while ((c = *cp) != NULL) {
    if (c->dead) {
      *cp = c->next;
      free (c);
    }
    else
      cp = &c->next;
  }
}

/* Deliver what is due.  Return when something is next due: a release,
 * or the link queue getting short enough to read again.
 */
static int64_t
flush_all (int64_t now)
{
  int64_t wake = INT64_MAX;
  struct conn *c;
  int i;

  for (i = 0; i < 2 && !relay.cut; i++)
    if (!link_open (i, now) && relay.vt[i] - QUEUE_NS + 1 < wake)
      wake = relay.vt[i] - QUEUE_NS + 1;

  for (c = relay.conns; c && !relay.cut; c = c->next) {
    if (c->dead || c->state != CONN_OPEN)
      continue;
    for (i = 0; i < 2 && !c->dead; i++) {
      if (dir_flush (c, i, now) == -1)
        conn_close (c, true);
    }
    if (!c->dead && c->dir[0].eof_out && c->dir[1].eof_out)
      conn_close (c, false);        /* Both halves closed: done. */
    for (i = 0; i < 2 && !c->dead; i++) {
      if (c->dir[i].head && c->dir[i].head->release > now &&
          c->dir[i].head->release < wake)
        wake = c->dir[i].head->release;
    }
  }
  return wake;
}

static void
build_pollfds (int64_t now)
{
  struct conn *c;
  int i;

  pfds_len = 0;
  poll_add (relay.lfd, POLLIN);     /* Always pfds[0]. */
  poll_add (relay.cfd, POLLIN);     /* pfds[1] if there is one. */
  for (c = relay.conns; c; c = c->next) {
    c->pidx[0] = -1;
    c->pidx[1] = c->state == CONN_CONNECTING ? poll_add (c->fd[1], POLLOUT) : -1;
    for (i = 0; i < 2 && c->state == CONN_OPEN && !relay.cut; i++)
      c->pidx[i] = poll_add (c->fd[i],
                             (dir_can_read (&c->dir[i]) &&
                              link_open (i, now) ? POLLIN : 0) |
                             (c->dir[1 - i].want_out ? POLLOUT : 0));
  }
}

static void
handle_events (int64_t now)
{
  struct conn *c;
  short re;
  int i;

  for (c = relay.conns; c; c = c->next) {
    if (c->state == CONN_CONNECTING && revents (c->pidx[1])) {
      conn_connected (c);
      continue;
    }
    for (i = 0; i < 2 && !c->dead; i++) {
      re = revents (c->pidx[i]);
      if (re & (POLLOUT | POLLHUP))
        c->dir[1 - i].want_out = false; /* Retry; a dead peer fails it. */
      if (re & POLLERR)
        conn_close (c, true);
      else if ((re & (POLLIN | POLLHUP)) && dir_can_read (&c->dir[i]))
        conn_read (c, i, now);
    }
  }
  if (pfds[0].revents)
    accept_conns ();
  if (relay.cfd != -1 && pfds[1].revents)
    ctl_serve ();
}

static void
on_signal (int sig)
{
  stop_signal = sig;
}

static int
run (void)
{
  struct sigaction sa = { .sa_handler = on_signal };
  sigset_t block, orig;
  struct timespec ts;
  struct conn *c;
  int64_t now, wake;

  /* SIGTERM/SIGINT arrive only inside ppoll, so none is missed. */
  sigemptyset (&block);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGINT);
  sigprocmask (SIG_BLOCK, &block, &orig);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  while (!relay.quit && !stop_signal) {
    now = now_ns ();
    wake = flush_all (now);
    sweep ();
    build_pollfds (now);
    ts.tv_sec = (wake - now) / NS;
    ts.tv_nsec = (wake - now) % NS;
    if (ppoll (pfds, pfds_len, wake == INT64_MAX ? NULL : &ts, &orig) == -1) {
      if (errno == EINTR)
        continue;
      msg ("ppoll: %m");
      return EXIT_FAILURE;
    }
    handle_events (now_ns ());
  }

  for (c = relay.conns; c; c = c->next)
    if (!c->dead)
      conn_close (c, false);
  sweep ();
  free (pfds);
  return EXIT_SUCCESS;
}

/*---------------------------------------------------------------------------
 * Startup.
 */

static void
usage (FILE *f)
{
  fprintf (f,
"usage: velo-link --listen ADDR --connect ADDR [--delay-ms N] [--rate BITS]\n"
"                 [--control PATH] [--pidfile FILE] [--log FILE]\n"
"       velo-link --ctl PATH COMMAND [ARG]\n"
"ADDR is unix:/path or HOST:PORT on a loopback address.  --delay-ms is the\n"
"one-way delay of each direction (RTT = 2 x N).  --rate is bit/s per\n"
"direction, e.g. 100m, 20m, 500k; 0 means unlimited.  Commands: cut, restore,\n"
"reset, delay MS, rate BITS, stats, quit.  See tests/wan/README.md.\n");
}

/* Write then rename, so whoever waits for the file reads a whole pid.
 * It appears after "ready": scripts may wait for either.
 */
static bool
write_pidfile (const char *path)
{
  char tmp[4096];
  FILE *f;

  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  f = fopen (tmp, "w");
  if (!f || fprintf (f, "%d\n", (int) getpid ()) < 0 || fclose (f) != 0 ||
      rename (tmp, path) == -1) {
    msg ("--pidfile %s: %m", path);
    return false;
  }
  return true;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "listen",   required_argument, NULL, 'l' },
    { "connect",  required_argument, NULL, 'c' },
    { "delay-ms", required_argument, NULL, 'd' },
    { "rate",     required_argument, NULL, 'r' },
    { "control",  required_argument, NULL, 'C' },
    { "pidfile",  required_argument, NULL, 'p' },
    { "log",      required_argument, NULL, 'L' },
    { "help",     no_argument,       NULL, 'h' },
    { NULL },
  };
  const char *listen_text = NULL, *connect_text = NULL, *log = NULL;
  char ctl_text[4096];
  struct addr ctl_addr;
  int c, fd, status;

  if (argc >= 2 && strcmp (argv[1], "--ctl") == 0) {
    if (argc >= 4)
      return ctl_main (argv[2], argc - 3, argv + 3);
    usage (stderr);
    return EXIT_FAILURE;
  }

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'l': listen_text = optarg; break;
    case 'c': connect_text = optarg; break;
    case 'C': relay.control_path = optarg; break;
    case 'p': relay.pidfile = optarg; break;
    case 'L': log = optarg; break;
    case 'h': usage (stdout); return EXIT_SUCCESS;
    case 'd':
      if (!parse_delay (optarg, &relay.delay_ns)) {
        msg ("--delay-ms %s: expected milliseconds (0 to 3600000)", optarg);
        return EXIT_FAILURE;
      }
      break;
    case 'r':
      if (!parse_rate (optarg, &relay.rate)) {
        msg ("--rate %s: expected bit/s such as 100m, 20m, 500k or 0", optarg);
        return EXIT_FAILURE;
      }
      break;
    default:
      usage (stderr);
      return EXIT_FAILURE;
    }
  }
  if (optind != argc || !listen_text || !connect_text) {
    msg ("--listen and --connect are required");
    usage (stderr);
    return EXIT_FAILURE;
  }
  if (!parse_addr ("--listen", listen_text, &relay.listen) ||
      !parse_addr ("--connect", connect_text, &relay.connect))
    return EXIT_FAILURE;

  if (log) {
    fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1) {
      msg ("--log %s: %m", log);
      return EXIT_FAILURE;
    }
    dup2 (fd, STDERR_FILENO);
    close (fd);
  }
  setvbuf (stderr, NULL, _IOLBF, 0);

  relay.lfd = listen_on ("--listen", &relay.listen);
  if (relay.lfd == -1)
    return EXIT_FAILURE;
  if (relay.control_path) {
    snprintf (ctl_text, sizeof ctl_text, "unix:%s", relay.control_path);
    if (!parse_addr ("--control", ctl_text, &ctl_addr))
      return EXIT_FAILURE;
    relay.cfd = listen_on ("--control", &ctl_addr);
    if (relay.cfd == -1)
      return EXIT_FAILURE;
  }
  if (relay.listen.ss.ss_family != AF_UNIX)
    msg ("listening on TCP port %d",
         ntohs (((struct sockaddr_in *) &relay.listen.ss)->sin_port));
  msg ("relaying %s -> %s, delay %" PRId64 " ms each way, rate %" PRIu64
       " bit/s%s", relay.listen.text, relay.connect.text,
       relay.delay_ns / 1000000, relay.rate, relay.rate ? "" : " (unlimited)");
  msg ("ready");
  if (relay.pidfile && !write_pidfile (relay.pidfile))
    return EXIT_FAILURE;

  status = run ();

  close (relay.lfd);
  if (relay.listen.ss.ss_family == AF_UNIX)
    unlink (((struct sockaddr_un *) &relay.listen.ss)->sun_path);
  if (relay.cfd != -1) {
    close (relay.cfd);
    unlink (relay.control_path);
  }
  if (relay.pidfile)
    unlink (relay.pidfile);
  if (stop_signal)
    msg ("stopped by signal %d", (int) stop_signal);
  return status;
}
