/*
 * ctl_console.c - the admin console: Telnet-style sessions (libcli) on the
 * configured console address, with a password and an enable level
 * (docs/console.md). This file is glue only: the commands, their parsing
 * and their output are ctl_cmd.c's.
 *
 * Threads. The control thread is the single writer of the Service
 * Manager's state, and libcli's cli_loop() blocks, so:
 *   - the control thread owns the listening socket, accepts, and starts two
 *     threads per session (at most console.sessions; more connections get a
 *     one-line refusal): the session thread and its relay (relay_main);
 *   - the relay moves bytes between the client's socket and libcli's end of
 *     a socket pair, cutting overlong input lines and ending a session
 *     whose client takes no output for SEND_TIMEOUT_S;
 *   - a session thread runs cli_loop() and never touches SM, CASA, agent or
 *     fast-path state: each command callback posts its line to its slot,
 *     wakes the control thread (an eventfd) and waits;
 *   - ctl_console_run, on the control thread, runs posted lines with
 *     ctl_cmd_exec into the slot's ctl_out and wakes the session, which
 *     prints the text;
 *   - ctl_console_destroy sets `stopping`, wakes every waiting session,
 *     shuts every session socket down (the relay ends, closing its end, and
 *     cli_loop reads end-of-file) and joins the threads.
 * Everything shared between a session and the control thread is under
 * `mu`, except the ctl_out and the line, which change hands with `pending`
 * and `done` (set under `mu`). libcli closes its end of the pair when its
 * loop ends, the relay closes its end; the client's socket is ours, valid
 * for shutdown() until both threads are joined, so no descriptor number is
 * ever reused under us.
 *
 * ctl_console_fd is an epoll descriptor holding the listener, the eventfd
 * and a one-second timer (unauthenticated sessions are closed after
 * LOGIN_TIMEOUT_S even when their client trickles bytes).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libcli.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ctl_cmd_int.h"

#define ACCEPT_PER_TURN 8
#define LOGIN_TIMEOUT_S 60 /* to log in, however slowly the client types */
#define LOGIN_TRIES 3      /* failed passwords before the session is closed */
#define LOGINS_PER_PEER 2  /* sessions one address may have not logged in yet */
#define SEND_TIMEOUT_S 30  /* output the client does not take this long ends the session */
/* libcli's line buffer is 4096 bytes: a line recalled from its history
 * (itself no longer than this) plus this much typed still fits. */
#define RELAY_LINE_MAX 2000 /* input bytes of one line libcli is given (see relay_main) */
#define RELAY_TAB_ADDS 32   /* counted for a TAB: longer than any word it completes */

struct session {
	struct ctl_console *k;
	/* control thread only */
	bool used, started, login_expired;
	pthread_t thread, relay;
	bool relay_started;
	int sock;     /* the client's: shut down by control, closed after the joins */
	int cli_fd;   /* libcli's end of the relay's socket pair: cli_loop closes it */
	int relay_fd; /* the relay's end: the relay closes it */
	uint64_t id, accepted_ms;
	uint32_t peer_addr; /* host order */
	char peer[24];      /* "198.51.100.9:40312" */
	/* session thread only */
	unsigned failures;
	struct cli_def *cli;
	/* under k->mu */
	bool finished, relay_finished, authenticated;
	char who[96]; /* "session 2 (admin from 198.51.100.9:40312)" */
	bool pending, done, enabled;
	int rc;
	/* handed over by pending (to control) and done (back to the session) */
	char line[CTL_CMD_LINE_MAX + 1];
	struct ctl_out out;
};

struct ctl_console {
	struct ctl_view *view;
	int lfd, efd, tfd, ep;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping; /* under mu */
	unsigned max;
	unsigned idle_s;
	uint64_t next_id;
	char password[CTL_SECRET_MAX], enable_password[CTL_SECRET_MAX];
	char banner[256];
	struct session s[CTL_CONSOLE_SESSIONS_MAX];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The session a thread serves: libcli's login and enable callbacks carry
 * no context. */
static __thread struct session *cur;

__attribute__((format(printf, 1, 2))) static void console_log(const char *fmt, ...)
{
	va_list ap;

	// Session threads and the control thread log at once: one line each.
	flockfile(stderr);
	fprintf(stderr, "console: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	funlockfile(stderr);
}

static void wake(struct ctl_console *k)
{
	uint64_t one = 1;

	if (write(k->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		console_log("wake-up failed: %s", strerror(errno));
}

/* Equal secrets, in time independent of where they differ. */
static bool secret_eq(const char *given, const char *want)
{
	size_t n = strlen(want), m = strnlen(given, CTL_SECRET_MAX);
	unsigned char d = (unsigned char)(n != m);

	for (size_t i = 0; i < CTL_SECRET_MAX - 1; i++)
		d |= (unsigned char)((i < m ? given[i] : 0) ^ (i < n ? want[i] : 0));
	return d == 0;
}

/* ---- session threads ------------------------------------------------------------------ */

static void set_who(struct session *s, const char *user)
{
	char u[33];

	ctl_cmd_word(user, u, sizeof(u));
	pthread_mutex_lock(&s->k->mu);
	snprintf(s->who, sizeof(s->who), "session %llu (%s%sfrom %s)", (unsigned long long)s->id, u,
		 u[0] ? " " : "", s->peer);
	s->authenticated = true;
	pthread_mutex_unlock(&s->k->mu);
}

/* A guesser (login or enable) gets one try a second, and LOGIN_TRIES per
 * connection. */
static void slow_guesser(struct session *s)
{
	struct timespec pause = { .tv_sec = 1 };

	// The input ends (the relay reads end-of-file, then libcli does);
	// the client sees the end only when the control thread has freed the
	// slot and closes the socket, so it can connect again at once.
	if (++s->failures >= LOGIN_TRIES)
		shutdown(s->sock, SHUT_RD);
	else
		nanosleep(&pause, NULL);
}

static int on_login(const char *user, const char *password)
{
	struct session *s = cur;
	char u[33];

	if (secret_eq(password, s->k->password)) {
		set_who(s, user);
		console_log("session %llu from %s: %s logged in", (unsigned long long)s->id,
			    s->peer, ctl_cmd_word(user, u, sizeof(u)));
		return CLI_OK;
	}
	console_log("session %llu from %s: login as \"%s\" failed", (unsigned long long)s->id,
		    s->peer, ctl_cmd_word(user, u, sizeof(u)));
	slow_guesser(s);
	return CLI_ERROR;
}

/* libcli's enable callback: non-zero allows. */
static int on_enable(const char *password)
{
	struct session *s = cur;

	if (!s->k->enable_password[0]) {
		cli_print(s->cli, "%% no enable_password is configured: this console is read-only");
		return 0;
	}
	if (secret_eq(password, s->k->enable_password)) {
		console_log("session %llu from %s: enable", (unsigned long long)s->id, s->peer);
		return 1;
	}
	console_log("session %llu from %s: enable refused", (unsigned long long)s->id, s->peer);
	slow_guesser(s);
	return 0;
}

/* Post line to the control thread and wait for its answer in s->out.
 * -ESHUTDOWN when the console is going away. */
static int request(struct session *s, const char *line, bool enabled)
{
	struct ctl_console *k = s->k;
	int rc;

	pthread_mutex_lock(&k->mu);
	if (k->stopping) {
		pthread_mutex_unlock(&k->mu);
		return -ESHUTDOWN;
	}
	snprintf(s->line, sizeof(s->line), "%s", line);
	s->enabled = enabled;
	s->done = false;
	s->pending = true;
	pthread_mutex_unlock(&k->mu);
	wake(k);
	pthread_mutex_lock(&k->mu);
	while (!s->done && !k->stopping)
		pthread_cond_wait(&k->cv, &k->mu);
	rc = s->done ? s->rc : -ESHUTDOWN;
	s->pending = false;
	pthread_mutex_unlock(&k->mu);
	return rc;
}

/* The line libcli matched, back as text: its full command name, then the
 * arguments, quoted where they hold blanks or quotes. */
static bool join_line(const char *command, char **argv, int argc, char *buf, size_t cap)
{
	size_t len = (size_t)snprintf(buf, cap, "%s", command);

	for (int i = 0; i < argc && len < cap; i++) {
		bool quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\"\\") != NULL;

		len += (size_t)snprintf(buf + len, cap - len, quote ? " \"" : " ");
		for (const char *p = argv[i]; *p && len < cap; p++) {
			if (quote && (*p == '"' || *p == '\\'))
				buf[len++] = '\\';
			if (len < cap)
				buf[len++] = *p;
		}
		if (quote && len < cap)
			buf[len++] = '"';
	}
	if (len >= cap)
		return false;
	buf[len] = '\0';
	return true;
}

static int on_command(struct cli_def *cli, const char *command, char *argv[], int argc)
{
	struct session *s = cli_get_context(cli);
	char line[CTL_CMD_LINE_MAX + 1];
	const char *text;
	size_t len;

	if (!join_line(command, argv, argc, line, sizeof(line))) {
		cli_print(cli, "%% line too long (at most %d characters)", CTL_CMD_LINE_MAX);
		return CLI_OK;
	}
	if (request(s, line, cli->privilege == PRIVILEGE_PRIVILEGED) == -ESHUTDOWN)
		return CLI_QUIT;
	text = ctl_out_text(&s->out);
	len = strlen(text);
	// cli_print ends every line itself (CR LF) and applies `| include`.
	if (len > 0)
		cli_print(cli, "%.*s", (int)(len - (text[len - 1] == '\n')), text);
	return CLI_OK;
}

/* Help of the words that group rows: "show", "show casa", ... */
static const char *group_help(const char *path)
{
	static const struct {
		const char *path, *help;
	} g[] = {
		{ "show", "Show the appliance's tables and counters" },
		{ "show casa", "CASA displays (show ip casa)" },
		{ "trace", "Trace a packet through the fast path" },
		{ "port", "Add or delete a service's ports (enable)" },
		{ "target", "Quiesce, resume or weigh a target (enable)" },
		{ "clear", "Clear counters (enable)" },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		if (strcmp(g[i].path, path) == 0)
			return g[i].help;
	return NULL;
}

static struct cli_command *child(struct cli_def *cli, struct cli_command *parent, const char *w)
{
	for (struct cli_command *c = parent ? parent->children : cli->commands; c; c = c->next)
		if (strcmp(c->command, w) == 0)
			return c;
	return NULL;
}

/* Would any row under path be allowed at the user level? */
static int group_privilege(const struct ctl_cmd *rows, unsigned n, const char *path)
{
	size_t len = strlen(path);

	for (unsigned i = 0; i < n; i++)
		if (!rows[i].privileged && strncmp(rows[i].words, path, len) == 0 &&
		    rows[i].words[len] == ' ')
			return PRIVILEGE_UNPRIVILEGED;
	return PRIVILEGE_PRIVILEGED;
}

/* One row: its words as a path of libcli commands, the last one calling
 * on_command. Returns 0 or -1. */
static int register_row(struct cli_def *cli, const struct ctl_cmd *rows, unsigned n,
			const struct ctl_cmd *r)
{
	struct cli_command *parent = NULL;
	char path[64] = "", help[160];
	const char *p = r->words;

	while (*p) {
		size_t wl = strcspn(p, " ");
		char w[24];
		bool last = p[wl] == '\0';
		struct cli_command *c;

		snprintf(w, sizeof(w), "%.*s", (int)wl, p);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s%s",
			 path[0] ? " " : "", w);
		c = child(cli, parent, w);
		if (!c && last) {
			snprintf(help, sizeof(help), "%s%s%s", r->help, r->args[0] ? ": " : "",
				 r->args);
			c = cli_register_command(cli, parent, w, on_command,
						 r->privileged ? PRIVILEGE_PRIVILEGED :
								 PRIVILEGE_UNPRIVILEGED,
						 MODE_EXEC, help);
		} else if (!c) {
			c = cli_register_command(cli, parent, w, NULL,
						 group_privilege(rows, n, path), MODE_EXEC,
						 group_help(path));
		}
		if (!c)
			return -1;
		parent = c;
		p += wl + !last;
	}
	return 0;
}

static struct cli_def *session_cli(struct session *s)
{
	struct ctl_console *k = s->k;
	struct cli_def *cli = cli_init();
	const struct ctl_cmd *rows;
	unsigned n = ctl_cmd_table(&rows);

	if (!cli)
		return NULL;
	s->cli = cli;
	cli_set_context(cli, s);
	cli_set_hostname(cli, "casalb");
	cli_set_banner(cli, k->banner);
	if (k->password[0])
		cli_set_auth_callback(cli, on_login);
	else
		set_who(s, "");
	// An open console (loopback, no password) with no enable password
	// enables without one: libcli does so when no check is set.
	if (k->password[0] || k->enable_password[0])
		cli_set_enable_callback(cli, on_enable);
	if (k->idle_s)
		cli_set_idle_timeout(cli, k->idle_s);
	// Our own help lists the table; no configuration mode here.
	cli_unregister_command(cli, "help");
	cli_unregister_command(cli, "configure");
	for (unsigned i = 0; i < n; i++)
		if (register_row(cli, rows, n, &rows[i]) != 0) {
			cli_done(cli);
			return NULL;
		}
	return cli;
}

/*
 * The relay between the client's socket and libcli's end of a socket pair,
 * a thread per session. libcli reads and writes its descriptor directly,
 * so this is where the session's byte streams can be held to account:
 *   - input: libcli's line buffer is CLI_MAX_LINE_LENGTH (4096) and its TAB
 *     completion appends a word to it unchecked (libcli 1.10): the relay
 *     gives libcli at most RELAY_LINE_MAX bytes between line ends (CR,
 *     ^U), a TAB counted as the longest word it could add, and drops the
 *     rest of an overlong line; a line recalled from history (at most as
 *     long) plus a new one's worth stays inside libcli's buffer;
 *   - output: libcli writes line by line, each write blocking; here the
 *     output the client does not take for SEND_TIMEOUT_S ends the session,
 *     once, rather than every line waiting out its own time-out.
 * A client that stops sending (a half-close) still gets libcli's answers
 * to what it sent: libcli reads end-of-file after them. The relay ends when
 * libcli has closed and its output is sent, when the client's socket fails
 * or the control thread shuts it down, or on the output deadline; it then
 * closes its end, so libcli's loop ends too.
 */
struct relay_buf {
	char b[8192];
	size_t len, off;
};

/* Client bytes for libcli, overlong lines cut; line is the current line's
 * length so far. */
static size_t relay_filter(const char *in, size_t n, char *out, size_t *line)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		// What ends libcli's line: CR (Enter) and ^U (kill line); it
		// ignores LF and keeps its line on ^C and ^Z.
		if (c == '\r' || c == 0x15) {
			*line = 0;
		} else {
			// A TAB may complete a word: count the longest.
			size_t adds = c == '\t' ? RELAY_TAB_ADDS : 1;

			if (*line + adds > RELAY_LINE_MAX)
				continue;
			*line += adds;
		}
		out[k++] = c;
	}
	return k;
}

/* Move what is buffered to fd: 0, or -1 when fd is closed or failed. */
static int relay_flush(int fd, struct relay_buf *q, uint64_t *progress_ms)
{
	while (q->off < q->len) {
		ssize_t n = send(fd, q->b + q->off, q->len - q->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		q->off += (size_t)n;
		*progress_ms = mono_ms();
	}
	q->off = q->len = 0;
	return 0;
}

/* Which sides the relay still waits for: a side that hung up or ended is
 * polled no more (poll would report it at once, forever). */
struct relay_state {
	struct relay_buf in, out; /* client -> libcli, libcli -> client */
	bool client_eof;          /* the client sent its last byte */
	bool cli_eof;             /* libcli closed its end */
	bool done;
	size_t line;
	uint64_t out_progress_ms;
};

static void relay_poll(const struct session *s, const struct relay_state *r, struct pollfd p[2])
{
	short ev0 = (short)((!r->client_eof && r->in.len == 0 ? POLLIN : 0) |
			    (r->out.len ? POLLOUT : 0));
	short ev1 = (short)((!r->cli_eof && r->out.len == 0 ? POLLIN : 0) |
			    (!r->cli_eof && r->in.len ? POLLOUT : 0));

	p[0] = (struct pollfd){ .fd = ev0 ? s->sock : -1, .events = ev0 };
	p[1] = (struct pollfd){ .fd = ev1 ? s->relay_fd : -1, .events = ev1 };
}

/* The client's side: its bytes in (filtered), hang-ups. */
static void relay_client(struct session *s, struct relay_state *r, short revents)
{
	char raw[sizeof(r->in.b)];
	ssize_t n;

	if (revents & POLLERR) {
		r->done = true;
		return;
	}
	if (r->client_eof || r->in.len || !(revents & (POLLIN | POLLHUP))) {
		if (revents & POLLHUP) // both directions gone, nothing to deliver
			r->done = true;
		return;
	}
	n = recv(s->sock, raw, sizeof(raw), MSG_DONTWAIT);
	if (n > 0) {
		r->in.len = relay_filter(raw, (size_t)n, r->in.b, &r->line);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		// The client is done sending: libcli gets what came before and
		// then end-of-file, answers, and closes; its answers still go out.
		r->client_eof = true;
		shutdown(s->relay_fd, SHUT_WR);
	}
}

/* libcli's side: its output, read only when the last has gone on (data
 * it wrote before closing is read before its end-of-file). */
static void relay_cli(struct session *s, struct relay_state *r, short revents)
{
	ssize_t n;

	if (r->cli_eof || r->out.len || !(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(s->relay_fd, r->out.b, sizeof(r->out.b), MSG_DONTWAIT);
	if (n > 0) {
		r->out.len = (size_t)n;
		r->out_progress_ms = mono_ms();
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		r->cli_eof = true;
	}
}

static void *relay_main(void *arg)
{
	struct session *s = arg;
	struct relay_state r = { .out_progress_ms = mono_ms() };
	uint64_t unused = 0;

	while (!r.done) {
		struct pollfd p[2];

		relay_poll(s, &r, p);
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (r.out.len && mono_ms() - r.out_progress_ms > SEND_TIMEOUT_S * 1000ULL) {
			console_log("session %llu from %s: the client took no output for %d s",
				    (unsigned long long)s->id, s->peer, SEND_TIMEOUT_S);
			break;
		}
		relay_client(s, &r, p[0].revents);
		relay_cli(s, &r, p[1].revents);
		// Input libcli no longer takes (it closed) is dropped; its end
		// comes through relay_cli once its last output is read.
		if (r.cli_eof || relay_flush(s->relay_fd, &r.in, &unused) != 0)
			r.in.len = r.in.off = 0;
		if (relay_flush(s->sock, &r.out, &r.out_progress_ms) != 0)
			r.done = true;
		if (r.cli_eof && r.out.len == 0) // libcli done, all it said sent
			r.done = true;
	}
	// The client's socket stays open until the control thread has freed
	// the slot and closes it: a client that sees the end can connect again
	// at once and find room.
	close(s->relay_fd);
	pthread_mutex_lock(&s->k->mu);
	s->relay_finished = true;
	pthread_mutex_unlock(&s->k->mu);
	wake(s->k);
	return NULL;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct ctl_console *k = s->k;
	struct cli_def *cli;

	cur = s;
	cli = session_cli(s);
	// cli_loop closes its descriptor when its loop ran (CLI_OK).
	if (!cli || cli_loop(cli, s->cli_fd) != CLI_OK)
		close(s->cli_fd);
	if (cli)
		cli_done(cli);
	console_log("session %llu from %s closed", (unsigned long long)s->id, s->peer);
	pthread_mutex_lock(&k->mu);
	s->finished = true;
	pthread_mutex_unlock(&k->mu);
	wake(k);
	return NULL;
}

/* ---- the control thread ------------------------------------------------------------------- */

static void refuse(int fd, const char *peer, const char *why)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "%% casalb console: %s\r\n", why);

	if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0; // the refusal is a courtesy
	close(fd);
	console_log("connection from %s refused: %s", peer, why);
}

/* Sessions from addr that have not logged in (yet). */
static unsigned logins_from(struct ctl_console *k, uint32_t addr)
{
	unsigned n = 0;

	pthread_mutex_lock(&k->mu);
	for (unsigned i = 0; i < k->max; i++)
		n += k->s[i].used && k->s[i].peer_addr == addr && !k->s[i].authenticated;
	pthread_mutex_unlock(&k->mu);
	return n;
}

static struct session *free_slot(struct ctl_console *k)
{
	for (unsigned i = 0; i < k->max; i++)
		if (!k->s[i].used)
			return &k->s[i];
	return NULL;
}

/* Start the session thread with every signal blocked: signals go to the
 * main thread, and a write to a closed connection fails with EPIPE rather
 * than killing the process (libcli writes with plain write()). */
static int session_start(struct session *s)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&s->relay, NULL, relay_main, s);
	if (rc == 0) {
		s->relay_started = true;
		rc = pthread_create(&s->thread, NULL, session_main, s);
		if (rc != 0) {
			// Without libcli's end the relay stops at once, closing its
			// own: the pair is gone.
			close(s->cli_fd);
			pthread_join(s->relay, NULL);
			s->relay_started = false;
			s->cli_fd = s->relay_fd = -1;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

/* The relay's socket pair: sp[0] for libcli, which waits with select()
 * (so below FD_SETSIZE), sp[1] for the relay, non-blocking. */
static int relay_pair(int sp[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		return -1;
	if (sp[0] < FD_SETSIZE && fcntl(sp[1], F_SETFL, O_NONBLOCK) == 0)
		return 0;
	close(sp[0]);
	close(sp[1]);
	return -1;
}

static void session_open(struct ctl_console *k, int fd, uint32_t addr, const char *peer,
			 uint64_t now_ms)
{
	struct session *s = free_slot(k);
	char why[80], a[16];
	int one = 1, sp[2];

	if (!s) {
		snprintf(why, sizeof(why), "all %u sessions are in use (console.sessions)", k->max);
		refuse(fd, peer, why);
		return;
	}
	// Connections that never log in hold a slot for LOGIN_TIMEOUT_S: one
	// address may not take every slot that way and lock the operators out.
	if (logins_from(k, addr) >= LOGINS_PER_PEER) {
		snprintf(why, sizeof(why), "%d logins already in progress from %s", LOGINS_PER_PEER,
			 ctl_cmd_ip(addr, a));
		refuse(fd, peer, why);
		return;
	}
	if (relay_pair(sp) != 0) {
		refuse(fd, peer, "too many open descriptors");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*s = (struct session){ .k = k,
			       .used = true,
			       .sock = fd,
			       .peer_addr = addr,
			       .cli_fd = sp[0],
			       .relay_fd = sp[1],
			       .id = ++k->next_id,
			       .accepted_ms = now_ms };
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	ctl_out_init(&s->out, 0);
	if (session_start(s) != 0) {
		if (s->cli_fd >= 0) // no thread started: the pair is still ours
			close(s->cli_fd);
		if (s->relay_fd >= 0)
			close(s->relay_fd);
		close(fd);
		ctl_out_free(&s->out);
		s->used = false;
		console_log("connection from %s refused: no thread", peer);
		return;
	}
	s->started = true;
	console_log("session %llu from %s opened", (unsigned long long)s->id, peer);
}

static void accept_some(struct ctl_console *k, uint64_t now_ms)
{
	for (int i = 0; i < ACCEPT_PER_TURN; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		char a[16], peer[24];
		int fd = accept4(k->lfd, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		snprintf(peer, sizeof(peer), "%s:%u", ctl_cmd_ip(ntohl(from.sin_addr.s_addr), a),
			 ntohs(from.sin_port));
		session_open(k, fd, ntohl(from.sin_addr.s_addr), peer, now_ms);
	}
}

/* Run the posted lines, one per session per turn. */
static void serve(struct ctl_console *k, uint64_t now_ms)
{
	for (unsigned i = 0; i < k->max; i++) {
		struct session *s = &k->s[i];
		struct ctl_cmd_origin o = { 0 };
		char who[sizeof(s->who)];
		bool go;
		int rc;

		if (!s->used)
			continue;
		pthread_mutex_lock(&k->mu);
		go = s->pending && !s->done;
		o.enabled = s->enabled;
		memcpy(who, s->who, sizeof(who));
		pthread_mutex_unlock(&k->mu);
		if (!go)
			continue;
		o.who = who;
		ctl_out_reset(&s->out);
		rc = ctl_cmd_exec(k->view, s->line, &o, now_ms, &s->out);
		pthread_mutex_lock(&k->mu);
		s->rc = rc;
		s->done = true;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
}

static void session_close(struct session *s)
{
	if (s->started)
		pthread_join(s->thread, NULL);
	if (s->relay_started)
		pthread_join(s->relay, NULL);
	close(s->sock);
	ctl_out_free(&s->out);
	s->used = false;
}

/* Join the sessions that ended; close the logins that take too long. */
static void reap(struct ctl_console *k, uint64_t now_ms)
{
	for (unsigned i = 0; i < k->max; i++) {
		struct session *s = &k->s[i];
		bool fin, auth;

		if (!s->used)
			continue;
		pthread_mutex_lock(&k->mu);
		// Both threads: the relay may still hand libcli's last words on
		// (bounded by SEND_TIMEOUT_S), and the joins must not wait.
		fin = s->finished && s->relay_finished;
		auth = s->authenticated;
		pthread_mutex_unlock(&k->mu);
		if (fin) {
			session_close(s);
		} else if (!auth && !s->login_expired &&
			   now_ms - s->accepted_ms >= LOGIN_TIMEOUT_S * 1000ULL) {
			s->login_expired = true;
			shutdown(s->sock, SHUT_RDWR);
			console_log("session %llu from %s: no login within %d s",
				    (unsigned long long)s->id, s->peer, LOGIN_TIMEOUT_S);
		}
	}
}

void ctl_console_run(struct ctl_console *k, uint64_t now_ms)
{
	uint64_t n;

	if (!k || k->ep < 0)
		return;
	if (read(k->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		console_log("eventfd: %s", strerror(errno));
	if (read(k->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		console_log("timer: %s", strerror(errno));
	reap(k, now_ms); // slots freed before new connections look for one
	accept_some(k, now_ms);
	serve(k, now_ms);
}

int ctl_console_fd(const struct ctl_console *k)
{
	return k ? k->ep : -1;
}

/* ---- set-up ------------------------------------------------------------------------------- */

static int listen_on(struct ctl_console *k, const struct ctl_listener_conf *l, char *err,
		     size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(l->port),
				 .sin_addr.s_addr = htonl(l->addr) };
	char ip[16];
	int one = 1;

	k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->lfd < 0 || setsockopt(k->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(k->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(k->lfd, 16) != 0) {
		snprintf(err, errlen, "console %s:%u: %s", ctl_cmd_ip(l->addr, ip), l->port,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int watch(struct ctl_console *k, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int wakeups(struct ctl_console *k, char *err, size_t errlen)
{
	struct itimerspec second = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };

	k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	k->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	k->ep = epoll_create1(EPOLL_CLOEXEC);
	if (k->efd < 0 || k->tfd < 0 || k->ep < 0 || timerfd_settime(k->tfd, 0, &second, NULL) ||
	    watch(k, k->lfd) || watch(k, k->efd) || watch(k, k->tfd)) {
		snprintf(err, errlen, "console: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void settings(struct ctl_console *k, const struct ctl_conf *c)
{
	const struct ctl_console_conf *a = &c->console_access;
	char ip[16];

	memcpy(k->password, a->password, sizeof(k->password));
	memcpy(k->enable_password, a->enable_password, sizeof(k->enable_password));
	k->max = a->sessions < 1                        ? 1 :
		 a->sessions > CTL_CONSOLE_SESSIONS_MAX ? CTL_CONSOLE_SESSIONS_MAX :
							  a->sessions;
	k->idle_s = a->idle_timeout_s;
	snprintf(k->banner, sizeof(k->banner), "casalb admin console, service manager %s%s",
		 ctl_cmd_ip(c->sm.addr, ip),
		 k->enable_password[0] || !k->password[0] ?
			 "" :
			 "\r\n(no enable_password configured: read-only)");
}

struct ctl_console *ctl_console_create(struct ctl_view *v, char *err, size_t errlen)
{
	const struct ctl_conf *c = v->c;
	struct ctl_console *k = calloc(1, sizeof(*k));
	char ip[16];

	if (!k) {
		snprintf(err, errlen, "console: out of memory");
		return NULL;
	}
	k->view = v;
	k->lfd = k->efd = k->tfd = k->ep = -1;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (!c->console.enabled)
		return k;
	// The configuration checker refuses this too; a view built by hand
	// must not open an unprotected console either.
	if (!c->console_access.password[0] && (c->console.addr >> 24) != 127) {
		snprintf(err, errlen, "console %s: a password is required off loopback",
			 ctl_cmd_ip(c->console.addr, ip));
		ctl_console_destroy(k);
		return NULL;
	}
	settings(k, c);
	if (listen_on(k, &c->console, err, errlen) != 0 || wakeups(k, err, errlen) != 0) {
		ctl_console_destroy(k);
		return NULL;
	}
	return k;
}

void ctl_console_destroy(struct ctl_console *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stopping = true;
	pthread_cond_broadcast(&k->cv);
	for (unsigned i = 0; i < CTL_CONSOLE_SESSIONS_MAX; i++)
		if (k->s[i].used)
			shutdown(k->s[i].sock, SHUT_RDWR);
	pthread_mutex_unlock(&k->mu);
	for (unsigned i = 0; i < CTL_CONSOLE_SESSIONS_MAX; i++)
		if (k->s[i].used)
			session_close(&k->s[i]);
	if (k->ep >= 0)
		close(k->ep);
	if (k->tfd >= 0)
		close(k->tfd);
	if (k->efd >= 0)
		close(k->efd);
	if (k->lfd >= 0)
		close(k->lfd);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	explicit_bzero(k->password, sizeof(k->password));
	explicit_bzero(k->enable_password, sizeof(k->enable_password));
	free(k);
}
