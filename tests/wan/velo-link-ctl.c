/* velo-link-ctl.c: velo-link's control socket and the --ctl client.
 *
 * A control connection carries one command line and gets one line back,
 * "ok ..." or "error ...".  The relay serves it inline from its main loop,
 * so commands run between two rounds of forwarding and need no lock; the
 * price is that a client must send its line at once (within 0.5 s).
 *
 *   cut             blackhole both directions; connections stay open
 *   restore         resume; queued data flows, keeping its pacing
 *   reset           close every connection with RST
 *   delay MS        one-way delay for data read from now on
 *   rate BITS       rate per direction for data read from now on
 *   stats           ok conns=N bytes_up=N bytes_down=N
 *   quit            stop the relay
 */

#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "velo-link.h"

#define UNUSED __attribute__ ((unused))
#define REPLY(...) snprintf (reply, CTL_LINE_MAX, __VA_ARGS__)

static void
cmd_cut (UNUSED const char *arg, char *reply)
{
  if (!relay.cut)
    relay.cut_since = now_ns ();
  relay.cut = true;
  REPLY ("ok cut");
}

static void
cmd_restore (UNUSED const char *arg, char *reply)
{
  int64_t shift = now_ns () - relay.cut_since;
  struct conn *c;
  struct chunk *ch;
  int i;

  /* Queued data resumes its pacing as if the cut had not happened. */
  for (i = 0; relay.cut && i < 2; i++) {
    relay.vt[i] += shift;
    for (c = relay.conns; c; c = c->next)
      for (ch = c->dir[i].head; ch; ch = ch->next)
        ch->release += shift;
  }
  relay.cut = false;
  for (c = relay.conns; c; c = c->next)
    if (!c->dead && c->state == CONN_WAITING)
      conn_connect (c);
  REPLY ("ok restore");
}

static void
cmd_reset (UNUSED const char *arg, char *reply)
{
  unsigned count = 0;
  struct conn *c;

  for (c = relay.conns; c; c = c->next)
    if (!c->dead && ++count)
      conn_close (c, true);
  REPLY ("ok reset %u", count);
}

static void
cmd_delay (const char *arg, char *reply)
{
  if (parse_delay (arg, &relay.delay_ns))
    REPLY ("ok delay %" PRId64, relay.delay_ns / 1000000);
  else
    REPLY ("error delay: expected milliseconds, got '%.64s'", arg);
}

static void
cmd_rate (const char *arg, char *reply)
{
  if (parse_rate (arg, &relay.rate))
    REPLY ("ok rate %" PRIu64, relay.rate);
  else
    REPLY ("error rate: expected bit/s such as 100m, got '%.64s'", arg);
}

static void
cmd_stats (UNUSED const char *arg, char *reply)
{
  unsigned conns = 0;
  struct conn *c;

  for (c = relay.conns; c; c = c->next)
    conns += !c->dead;
  REPLY ("ok conns=%u bytes_up=%" PRIu64 " bytes_down=%" PRIu64,
         conns, relay.bytes[0], relay.bytes[1]);
}

static void
cmd_quit (UNUSED const char *arg, char *reply)
{
  relay.quit = true;
  REPLY ("ok quit");
}

static const struct command {
  const char *name;
  bool has_arg;
  void (*fn) (const char *arg, char *reply);
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
ctl_command (char *line, char *reply)
{
  char *save, *name = strtok_r (line, " \t\r\n", &save);
  char *arg = name ? strtok_r (NULL, " \t\r\n", &save) : NULL;
  char *extra = arg ? strtok_r (NULL, " \t\r\n", &save) : NULL;
  size_t i;

  for (i = 0; name && i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp (name, commands[i].name) != 0)
      continue;
    if (extra || (arg != NULL) != commands[i].has_arg)
      REPLY ("error %s: wrong number of arguments", name);
    else
      commands[i].fn (arg, reply);
    return;
  }
  REPLY ("error unknown command '%.64s' (try cut, restore, reset, "
         "delay MS, rate BITS, stats, quit)", name ? name : "");
}

/* Serve each pending control connection: read a line, run it, answer,
 * close.  The relay stands still meanwhile, so a client gets 0.5 s.
 */
void
ctl_serve (void)
{
  struct timeval tv = { .tv_usec = 500000 };
  char line[CTL_LINE_MAX], reply[CTL_LINE_MAX + 1];
  size_t len = 0;
  ssize_t n = 1;
  int fd;

  while ((fd = accept4 (relay.cfd, NULL, NULL, SOCK_CLOEXEC)) != -1) {
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (len = 0; len < sizeof line - 1 && !memchr (line, '\n', len) &&
           (n = recv (fd, line + len, sizeof line - 1 - len, 0)) > 0; )
      len += n;
    line[len] = '\0';
    if (!memchr (line, '\n', len) && n != 0)
      REPLY ("error no command line (too long, or none within 0.5 s)");
    else
      ctl_command (line, reply);
    strcat (reply, "\n");
    send (fd, reply, strlen (reply), MSG_NOSIGNAL);
    close (fd);
  }
}

/* Client mode: velo-link --ctl PATH CMD [ARG].  Prints the answer line. */
int
ctl_main (const char *path, int argc, char **argv)
{
  struct addr a;
  char text[4096], reply[CTL_LINE_MAX + 2];
  FILE *f;
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
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || connect (fd, (struct sockaddr *) &a.ss, a.len) == -1) {
    msg ("connect %s: %m", text);
    return EXIT_FAILURE;
  }
  f = fdopen (fd, "r+");
  for (i = 0; f && i < argc; i++)
    fprintf (f, "%s%s", i ? " " : "", argv[i]);
  if (!f || fprintf (f, "\n") < 0 || fflush (f) == EOF) {
    msg ("send %s: %m", text);
    return EXIT_FAILURE;
  }
  if (!fgets (reply, sizeof reply, f)) {
    msg ("%s: closed without an answer", text);
    return EXIT_FAILURE;
  }
  fclose (f);
  reply[strcspn (reply, "\n")] = '\0';
  printf ("%s\n", reply);
  return strncmp (reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' ')
    ? EXIT_SUCCESS : EXIT_FAILURE;
}

