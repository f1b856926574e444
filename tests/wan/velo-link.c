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
 * of chunks.  A chunk of len bytes read at time t is stamped with
 *
 *   vt      = max (vt, t - BURST/rate) + len/rate      (token bucket)
 *   release = max (t, vt) + delay
 *
 * and is written once release <= now and every older chunk is written.
 * EOF travels as an empty chunk and becomes shutdown(SHUT_WR) on the far
 * side, so half-closes cross the link with the same delay as data.
 *
 * Invariants (checked by dir_ok() in assert):
 *  - chunks leave in the order they were read, whatever delay/rate do;
 *  - dir->buffered == sum over the queue of (len - off);
 *  - nothing is read from a side once its direction holds MAX_BUFFERED
 *    bytes (backpressure), after its EOF, or while the link is cut.
 *
 * One thread, one ppoll() loop, no locks.  Functions that fail print their
 * error themselves and return false or -1; callers only clean up.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define READ_SIZE    (64 * 1024)        /* Largest single read. */
#define SEG_SIZE     (16 * 1024)        /* Largest chunk: finer pacing. */
#define MAX_BUFFERED (64 * 1024 * 1024) /* Per direction. */
#define BURST_BYTES  (2 * 1500)         /* Token bucket depth, ~2 MTUs. */
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
  int64_t vt;                       /* Token bucket virtual time, ns. */
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
  int pidx[2];                      /* Index in pollfds this round or -1. */
  bool dead;                        /* Closed; freed by the next sweep. */
};

struct ctl {
  struct ctl *next;
  int fd;
  size_t len;
  char buf[CTL_LINE_MAX];
  int pidx;
  bool dead;
};

/* All state of the relay; only the main loop touches it. */
static struct {
  struct addr listen, connect;
  const char *control_path, *pidfile;
  int lfd, cfd;                     /* Listener, control listener. */
  int64_t delay_ns;
  uint64_t rate;                    /* bit/s per direction, 0 = unlimited. */
  bool cut;
  int64_t cut_since;
  uint64_t bytes[2];                /* Bytes delivered up, down. */
  struct conn *conns;
  struct ctl *ctls;
  bool quit;
} relay = { .lfd = -1, .cfd = -1 };

static volatile sig_atomic_t stop_signal;

static void __attribute__ ((format (printf, 1, 2)))
msg (const char *fmt, ...)
{
  va_list ap;
  int saved = errno;              /* For %m. */

  va_start (ap, fmt);
  fputs ("velo-link: ", stderr);
  errno = saved;
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

static int64_t
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
  if (relay.rate == 0)
    return 0;
  return (int64_t) (len * 8 * (uint64_t) NS / relay.rate);
}

/*---------------------------------------------------------------------------
 * Parsing the command line and control commands.
 */

static bool
is_loopback (const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
    return (ntohl (sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK (a) ||
      (IN6_IS_ADDR_V4MAPPED (a) && a->s6_addr[12] == 127);
  }
  return false;
}

/* Parse "unix:/path", "HOST:PORT" or "[V6]:PORT"; only loopback hosts. */
static bool
parse_addr (const char *opt, const char *text, struct addr *a)
{
  char host[256];
  const char *port;
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV };
  struct addrinfo *res;
  int r;

  a->text = text;
  if (strncmp (text, "unix:", 5) == 0) {
    struct sockaddr_un *sun = (struct sockaddr_un *) &a->ss;
    const char *path = text + 5;

    if (*path == '\0' || strlen (path) >= sizeof sun->sun_path) {
      msg ("%s %s: unix socket path is empty or too long", opt, text);
      return false;
    }
    sun->sun_family = AF_UNIX;
    strcpy (sun->sun_path, path);
    a->len = sizeof *sun;
    return true;
  }

  if (text[0] == '[') {
    const char *end = strchr (text, ']');
    if (!end || end[1] != ':' || (size_t) (end - text - 1) >= sizeof host)
      goto syntax;
    memcpy (host, text + 1, end - text - 1);
    host[end - text - 1] = '\0';
    port = end + 2;
  }
  else {
    const char *colon = strrchr (text, ':');
    if (!colon || (size_t) (colon - text) >= sizeof host)
      goto syntax;
    memcpy (host, text, colon - text);
    host[colon - text] = '\0';
    port = colon + 1;
  }
  if (*host == '\0' || *port == '\0')
    goto syntax;

  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0) {
    msg ("%s %s: %s", opt, text, gai_strerror (r));
    return false;
  }
  if (!is_loopback (res->ai_addr)) {
    msg ("%s %s: not a loopback address; velo-link relays only on this "
         "machine (use unix:PATH or 127.0.0.1:PORT)", opt, text);
    freeaddrinfo (res);
    return false;
  }
  memcpy (&a->ss, res->ai_addr, res->ai_addrlen);
  a->len = res->ai_addrlen;
  freeaddrinfo (res);
  return true;

 syntax:
  msg ("%s %s: expected unix:PATH or HOST:PORT", opt, text);
  return false;
}

/* Parse a rate such as "100m", "20M", "500k", "1.5g" or "0" (bit/s). */
static bool
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

static bool
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

  fd = socket (a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    msg ("%s %s: socket: %m", opt, a->text);
    return -1;
  }
  if (a->ss.ss_family == AF_UNIX) {
    const char *path = ((struct sockaddr_un *) &a->ss)->sun_path;
    /* A stale socket left by an earlier run would make bind fail. */
    if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
      unlink (path);
  }
  else
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &a->ss, a->len) == -1) {
    msg ("%s %s: bind: %m", opt, a->text);
    close (fd);
    return -1;
  }
  if (listen (fd, SOMAXCONN) == -1) {
    msg ("%s %s: listen: %m", opt, a->text);
    close (fd);
    return -1;
  }
  /* Learn the real port if the user asked for port 0. */
  if (a->ss.ss_family != AF_UNIX)
    getsockname (fd, (struct sockaddr *) &a->ss, &a->len);
  return fd;
}

/* Format a bound address for the startup message. */
static const char *
addr_str (const struct addr *a, char *buf, size_t n)
{
  char host[INET6_ADDRSTRLEN], port[16];

  if (a->ss.ss_family == AF_UNIX ||
      getnameinfo ((const struct sockaddr *) &a->ss, a->len,
                   host, sizeof host, port, sizeof port,
                   NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return a->text;
  snprintf (buf, n, a->ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
            host, port);
  return buf;
}

/*---------------------------------------------------------------------------
 * Directions: queueing, pacing and delivery.
 */

static bool __attribute__ ((unused))
dir_ok (const struct dir *d)
{
  size_t sum = 0;
  const struct chunk *c;

  for (c = d->head; c; c = c->next) {
    if (c->off > c->len || (c->eof && c->len != 0))
      return false;
    sum += c->len - c->off;
    if (!c->next && c != d->tail)
      return false;
  }
  return sum == d->buffered && (d->head != NULL) == (d->tail != NULL);
}

static bool
dir_can_read (const struct dir *d)
{
  return !d->eof_in && d->buffered < MAX_BUFFERED;
}

/* Stamp and queue len bytes (or EOF if len == 0 && eof) read at now. */
static void
dir_push (struct dir *d, const char *data, size_t len, bool eof, int64_t now)
{
  struct chunk *c = malloc (sizeof *c + len);

  if (!c) {
    msg ("malloc: %m");
    exit (EXIT_FAILURE);
  }
  d->vt = max64 (d->vt, now - wire_ns (BURST_BYTES)) + wire_ns (len);
  c->next = NULL;
  c->release = max64 (now, d->vt) + relay.delay_ns;
  c->len = len;
  c->off = 0;
  c->eof = eof;
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
  free (c);
}

static void
dir_clear (struct dir *d)
{
  while (d->head)
    dir_pop (d);
  d->buffered = 0;
}

/* Send every released chunk of c->dir[i] to c->fd[1-i].  -1 on error. */
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
    if (n == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d->want_out = true;
        break;
      }
      return -1;
    }
    c->off += n;
    d->buffered -= n;
    relay.bytes[i] += n;
    if (c->off == c->len)
      dir_pop (d);
  }
  assert (dir_ok (d));
  return 0;
}

/*---------------------------------------------------------------------------
 * Connections.
 */

static void
conn_close (struct conn *conn, bool rst)
{
  int i;

  for (i = 0; i < 2; i++) {
    if (rst)
      close_rst (conn->fd[i]);
    else if (conn->fd[i] != -1)
      close (conn->fd[i]);
    conn->fd[i] = -1;
    dir_clear (&conn->dir[i]);
  }
  conn->dead = true;
}

/* Open the server side of conn.  Closes conn (RST) on failure. */
static void
conn_connect (struct conn *conn)
{
  int fd;

  fd = socket (relay.connect.ss.ss_family,
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
    return;
  }
  conn->state = CONN_OPEN;
}

/* Read once from conn->fd[i] into dir[i].  Errors reset the connection. */
static void
conn_read (struct conn *conn, int i, int64_t now)
{
  static char buf[READ_SIZE];
  struct dir *d = &conn->dir[i];
  size_t room = MAX_BUFFERED - d->buffered, off, seg;
  ssize_t n;

  n = recv (conn->fd[i], buf, room < sizeof buf ? room : sizeof buf,
            MSG_DONTWAIT);
  if (n == -1) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      conn_close (conn, true); /* Usually ECONNRESET: pass it on. */
    return;
  }
  if (n == 0) {
    d->eof_in = true;
    dir_push (d, NULL, 0, true, now);
    return;
  }
  for (off = 0; off < (size_t) n; off += seg) {
    seg = (size_t) n - off < SEG_SIZE ? (size_t) n - off : SEG_SIZE;
    dir_push (d, buf + off, seg, false, now);
  }
}

static void
accept_conns (void)
{
  struct conn *conn;
  int fd;

  while ((fd = accept4 (relay.lfd, NULL, NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
    conn = calloc (1, sizeof *conn);
    if (!conn) {
      msg ("calloc: %m");
      exit (EXIT_FAILURE);
    }
    conn->fd[0] = fd;
    conn->fd[1] = -1;
    conn->pidx[0] = conn->pidx[1] = -1;
    conn->state = CONN_WAITING;
    set_nodelay (fd, &relay.listen);
    conn->next = relay.conns;
    relay.conns = conn;
    /* While cut, the "SYN" is lost: the server hears of it on restore. */
    if (!relay.cut)
      conn_connect (conn);
  }
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
      errno != ECONNABORTED)
    msg ("accept %s: %m", relay.listen.text);
}

/*---------------------------------------------------------------------------
 * Control socket: one command per line, one "ok ..."/"error ..." line back.
 */

static unsigned
count_conns (void)
{
  unsigned n = 0;
  struct conn *c;

  for (c = relay.conns; c; c = c->next)
    n += !c->dead;
  return n;
}

static void
cmd_cut (const char *arg, char *reply, size_t n)
{
  (void) arg;
  if (!relay.cut) {
    relay.cut = true;
    relay.cut_since = now_ns ();
  }
  snprintf (reply, n, "ok cut");
}

static void
cmd_restore (const char *arg, char *reply, size_t n)
{
  struct conn *c;
  struct chunk *ch;
  int64_t shift;
  int i;

  (void) arg;
  if (relay.cut) {
    /* Queued data resumes its pacing as if the cut never happened. */
    shift = now_ns () - relay.cut_since;
    relay.cut = false;
    for (c = relay.conns; c; c = c->next) {
      for (i = 0; i < 2; i++) {
        c->dir[i].vt += shift;
        for (ch = c->dir[i].head; ch; ch = ch->next)
          ch->release += shift;
      }
      if (!c->dead && c->state == CONN_WAITING)
        conn_connect (c);
    }
  }
  snprintf (reply, n, "ok restore");
}

static void
cmd_reset (const char *arg, char *reply, size_t n)
{
  struct conn *c;
  unsigned count = 0;

  (void) arg;
  for (c = relay.conns; c; c = c->next) {
    if (!c->dead) {
      conn_close (c, true);
      count++;
    }
  }
  snprintf (reply, n, "ok reset %u", count);
}

static void
cmd_delay (const char *arg, char *reply, size_t n)
{
  if (!parse_delay (arg, &relay.delay_ns)) {
    snprintf (reply, n, "error delay: expected milliseconds, got '%s'", arg);
    return;
  }
  snprintf (reply, n, "ok delay %" PRId64, relay.delay_ns / 1000000);
}

static void
cmd_rate (const char *arg, char *reply, size_t n)
{
  if (!parse_rate (arg, &relay.rate)) {
    snprintf (reply, n, "error rate: expected bit/s such as 100m, got '%s'",
              arg);
    return;
  }
  snprintf (reply, n, "ok rate %" PRIu64, relay.rate);
}

static void
cmd_stats (const char *arg, char *reply, size_t n)
{
  (void) arg;
  snprintf (reply, n, "ok conns=%u bytes_up=%" PRIu64 " bytes_down=%" PRIu64,
            count_conns (), relay.bytes[0], relay.bytes[1]);
}

static void
cmd_quit (const char *arg, char *reply, size_t n)
{
  (void) arg;
  relay.quit = true;
  snprintf (reply, n, "ok quit");
}

static const struct command {
  const char *name;
  bool has_arg;
  void (*fn) (const char *arg, char *reply, size_t n);
} commands[] = {
  { "cut",     false, cmd_cut },
  { "restore", false, cmd_restore },
  { "reset",   false, cmd_reset },
  { "delay",   true,  cmd_delay },
  { "rate",    true,  cmd_rate },
  { "stats",   false, cmd_stats },
  { "quit",    false, cmd_quit },
};

static void
ctl_command (char *line, char *reply, size_t n)
{
  char *name, *arg, *extra, *save;
  size_t i;

  name = strtok_r (line, " \t\r", &save);
  arg = name ? strtok_r (NULL, " \t\r", &save) : NULL;
  extra = arg ? strtok_r (NULL, " \t\r", &save) : NULL;
  if (!name) {
    snprintf (reply, n, "error empty command");
    return;
  }
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp (name, commands[i].name) != 0)
      continue;
    if (extra || (arg != NULL) != commands[i].has_arg)
      snprintf (reply, n, "error %s: wrong number of arguments", name);
    else
      commands[i].fn (arg, reply, n);
    return;
  }
  snprintf (reply, n, "error unknown command '%.64s' (try cut, restore, "
            "reset, delay MS, rate BITS, stats, quit)", name);
}

static void
ctl_reply (struct ctl *ctl, const char *reply)
{
  char line[CTL_LINE_MAX + 2];
  int len = snprintf (line, sizeof line, "%s\n", reply);

  if (send (ctl->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) != len)
    ctl->dead = true;
}

static void
ctl_read (struct ctl *ctl)
{
  char reply[CTL_LINE_MAX], *nl;
  ssize_t n;

  n = recv (ctl->fd, ctl->buf + ctl->len, sizeof ctl->buf - ctl->len,
            MSG_DONTWAIT);
  if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
    ctl->dead = true;
    return;
  }
  if (n == -1)
    return;
  ctl->len += n;
  while (!ctl->dead && (nl = memchr (ctl->buf, '\n', ctl->len)) != NULL) {
    *nl = '\0';
    ctl_command (ctl->buf, reply, sizeof reply);
    ctl_reply (ctl, reply);
    ctl->len -= nl + 1 - ctl->buf;
    memmove (ctl->buf, nl + 1, ctl->len);
  }
  if (ctl->len == sizeof ctl->buf) {
    ctl_reply (ctl, "error command line too long");
    ctl->dead = true;
  }
}

static void
accept_ctls (void)
{
  struct ctl *ctl;
  int fd;

  while ((fd = accept4 (relay.cfd, NULL, NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
    ctl = calloc (1, sizeof *ctl);
    if (!ctl) {
      msg ("calloc: %m");
      exit (EXIT_FAILURE);
    }
    ctl->fd = fd;
    ctl->pidx = -1;
    ctl->next = relay.ctls;
    relay.ctls = ctl;
  }
}

/* Client mode: velo-link --ctl PATH CMD...  Prints the answer. */
static int
ctl_main (const char *path, int argc, char **argv)
{
  struct addr a;
  char text[4096], line[CTL_LINE_MAX] = "", reply[CTL_LINE_MAX + 2];
  size_t len = 0;
  ssize_t n;
  int fd, i;

  if (strncmp (path, "unix:", 5) == 0)
    path += 5;
  snprintf (text, sizeof text, "unix:%s", path);
  if (!parse_addr ("--ctl", text, &a))
    return EXIT_FAILURE;
  if (argc == 0) {
    msg ("--ctl %s: no command given", path);
    return EXIT_FAILURE;
  }
  for (i = 0; i < argc; i++) {
    if (strlen (line) + strlen (argv[i]) + 2 >= sizeof line) {
      msg ("--ctl: command too long");
      return EXIT_FAILURE;
    }
    if (i > 0)
      strcat (line, " ");
    strcat (line, argv[i]);
  }
  strcat (line, "\n");

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || connect (fd, (struct sockaddr *) &a.ss, a.len) == -1) {
    msg ("connect unix:%s: %m", path);
    return EXIT_FAILURE;
  }
  if (send (fd, line, strlen (line), MSG_NOSIGNAL) != (ssize_t) strlen (line)) {
    msg ("send unix:%s: %m", path);
    return EXIT_FAILURE;
  }
  while (len < sizeof reply - 1 && !memchr (reply, '\n', len)) {
    n = recv (fd, reply + len, sizeof reply - 1 - len, 0);
    if (n <= 0) {
      msg ("unix:%s: %s", path, n == 0 ? "closed without an answer"
           : strerror (errno));
      return EXIT_FAILURE;
    }
    len += n;
  }
  reply[len] = '\0';
  reply[strcspn (reply, "\n")] = '\0';
  close (fd);
  printf ("%s\n", reply);
  return strncmp (reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' ')
    ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*---------------------------------------------------------------------------
 * Main loop.
 */

static struct pollfd *pfds;
static size_t pfds_len, pfds_cap;

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

/* Free closed connections and control clients. */
static void
sweep (void)
{
  struct conn **cp = &relay.conns, *c;
  struct ctl **tp = &relay.ctls, *t;

  while ((c = *cp) != NULL) {
    if (c->dead) {
      *cp = c->next;
      free (c);
    }
    else
      cp = &c->next;
  }
  while ((t = *tp) != NULL) {
    if (t->dead) {
      *tp = t->next;
      close (t->fd);
      free (t);
    }
    else
      tp = &t->next;
  }
}

/* Deliver what is due; return the earliest future release time. */
static int64_t
flush_all (int64_t now)
{
  int64_t wake = INT64_MAX;
  struct conn *c;
  int i;

  for (c = relay.conns; c; c = c->next) {
    if (c->dead || c->state != CONN_OPEN || relay.cut)
      continue;
    for (i = 0; i < 2 && !c->dead; i++) {
      if (dir_flush (c, i, now) == -1)
        conn_close (c, true);
    }
    if (c->dead)
      continue;
    if (c->dir[0].eof_out && c->dir[1].eof_out) {
      conn_close (c, false);
      continue;
    }
    for (i = 0; i < 2; i++) {
      if (c->dir[i].head && c->dir[i].head->release > now)
        wake = c->dir[i].head->release < wake ? c->dir[i].head->release : wake;
    }
  }
  return wake;
}

static void
build_pollfds (void)
{
  struct conn *c;
  struct ctl *t;
  int i;
  short ev;

  pfds_len = 0;
  poll_add (relay.lfd, POLLIN);
  if (relay.cfd != -1)
    poll_add (relay.cfd, POLLIN);
  for (t = relay.ctls; t; t = t->next)
    t->pidx = poll_add (t->fd, POLLIN);
  for (c = relay.conns; c; c = c->next) {
    c->pidx[0] = c->pidx[1] = -1;
    if (c->state == CONN_CONNECTING)
      c->pidx[1] = poll_add (c->fd[1], POLLOUT);
    if (c->state != CONN_OPEN || relay.cut)
      continue;
    for (i = 0; i < 2; i++) {
      ev = (dir_can_read (&c->dir[i]) ? POLLIN : 0) |
        (c->dir[1 - i].want_out ? POLLOUT : 0);
      c->pidx[i] = poll_add (c->fd[i], ev);
    }
  }
}

static void
handle_events (int64_t now)
{
  struct conn *c;
  struct ctl *t;
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
  for (t = relay.ctls; t; t = t->next) {
    if (!t->dead && revents (t->pidx))
      ctl_read (t);
  }
  if (pfds[0].revents)
    accept_conns ();
  if (relay.cfd != -1 && pfds[1].revents)
    accept_ctls ();
}

static void
on_signal (int sig)
{
  stop_signal = sig;
}

static int
run (void)
{
  sigset_t block, orig;
  struct sigaction sa = { .sa_handler = on_signal };
  struct timespec ts;
  int64_t now, wake;
  struct conn *c;

  /* SIGTERM/SIGINT are only delivered inside ppoll, so none is lost. */
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
    build_pollfds ();
    if (wake != INT64_MAX) {
      wake -= now;
      ts.tv_sec = wake / NS;
      ts.tv_nsec = wake % NS;
    }
    if (ppoll (pfds, pfds_len, wake == INT64_MAX ? NULL : &ts, &orig) == -1) {
      if (errno == EINTR)
        continue;
      msg ("ppoll: %m");
      return EXIT_FAILURE;
    }
    handle_events (now_ns ());
  }

  for (c = relay.conns; c; c = c->next) {
    if (!c->dead)
      conn_close (c, false);
  }
  for (struct ctl *t = relay.ctls; t; t = t->next)
    t->dead = true;
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

static bool
write_pidfile (const char *path)
{
  char tmp[4096];
  FILE *f;

  /* Write then rename, so whoever waits for the file reads a whole pid. */
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
  char lbuf[128], cbuf[128];
  int c, fd, status;

  if (argc >= 2 && strcmp (argv[1], "--ctl") == 0) {
    if (argc < 3) {
      usage (stderr);
      return EXIT_FAILURE;
    }
    return ctl_main (argv[2], argc - 3, argv + 3);
  }

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'l': listen_text = optarg; break;
    case 'c': connect_text = optarg; break;
    case 'C': relay.control_path = optarg; break;
    case 'p': relay.pidfile = optarg; break;
    case 'L': log = optarg; break;
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
    case 'h':
      usage (stdout);
      return EXIT_SUCCESS;
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
    struct addr ca;
    char text[4096];

    snprintf (text, sizeof text, "unix:%s", relay.control_path);
    if (!parse_addr ("--control", text, &ca))
      return EXIT_FAILURE;
    ca.text = relay.control_path;
    relay.cfd = listen_on ("--control", &ca);
    if (relay.cfd == -1)
      return EXIT_FAILURE;
  }
  if (relay.pidfile && !write_pidfile (relay.pidfile))
    return EXIT_FAILURE;

  msg ("relaying %s -> %s, delay %" PRId64 " ms each way, rate %" PRIu64
       " bit/s%s", addr_str (&relay.listen, lbuf, sizeof lbuf),
       addr_str (&relay.connect, cbuf, sizeof cbuf),
       relay.delay_ns / 1000000, relay.rate,
       relay.rate ? "" : " (unlimited)");
  msg ("ready");

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
