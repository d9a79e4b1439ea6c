/*
 * worker: the shutdown benchmark's workload (bench/). It is built by the
 * harness from this file (gcc -static -O2) and started by every PID 1
 * strategy the same way, as its only workload:
 *
 *	worker SCENARIO N SEED CGROUP_PROCS DATAFILE MIB
 *
 * It becomes one of N processes and creates the other N-1 by fork, never
 * exec, so that each costs a few pages and the benchmark measures the init,
 * not the processes. In every scenario but "daemon" the N-1 are created with
 * clone(CLONE_PARENT): their parent is PID 1 itself, as if PID 1 had started
 * them, so PID 1 reaps all N. In "daemon" they are classic double-forked
 * daemons, orphans that the kernel hands to PID 1.
 *
 *	exit       each process exits at once on SIGTERM
 *	random     each exits 0-50 ms after SIGTERM (uniform, from SEED)
 *	ignore     as exit, but process 1 ignores SIGTERM (it must be SIGKILLed)
 *	stopped    as exit, but every tenth process (1, 11, 21, ...) is stopped
 *	           (SIGSTOP): it runs its handler only once continued
 *	daemon     as exit, the N-1 being double-forked daemons
 *	pagecache  as exit, and MIB MiB (64 in the benchmark) written to
 *	           DATAFILE (no fsync) just before reporting ready
 *
 * CGROUP_PROCS ("-" for none) is a cgroup.procs file that the worker moves
 * itself to before it forks, so that PID 1's cgroup holds PID 1 alone and its
 * CPU time can be read from there.
 *
 * Reports are fixed 24-byte records written to descriptor 1, a pipe the
 * harness reads (writes of up to PIPE_BUF bytes to a pipe are atomic):
 *
 *	'R' ready:    a = CLOCK_MONOTONIC at main's entry, b = processes made
 *	'G' graceful: a = CLOCK_MONOTONIC when the SIGTERM handler finished
 *	'E' error:    a = errno, b = the step that failed
 *
 * Only async-signal-safe calls are made in the handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct record {
	uint32_t kind;
	int32_t pid;
	int64_t a, b;
};

enum { STEP_CGROUP = 1, STEP_SPAWN, STEP_STOP, STEP_WRITE, STEP_ARGS };

static int64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void emit(uint32_t kind, int64_t a, int64_t b)
{
	struct record r = { kind, (int32_t)syscall(SYS_getpid), a, b };
	ssize_t n;
	do
		n = write(1, &r, sizeof r);
	while (n < 0 && errno == EINTR);
}

static int64_t delay_ns; /* this process's delay after SIGTERM */

static void on_term(int sig)
{
	(void)sig;
	if (delay_ns > 0) {
		struct timespec d = { delay_ns / 1000000000, delay_ns % 1000000000 };
		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
	}
	emit('G', mono(), 0);
	_exit(0);
}

/* splitmix64: a good 64-bit mix for seeding per process. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static const char *scenario;
static uint64_t seed;

/* prepare sets, in the process about to fork, what process number i of the
 * scenario inherits: its delay after SIGTERM and whether it ignores SIGTERM.
 * Set before the fork, not by the child, so that it holds even if SIGTERM
 * arrives before the child first runs. restore undoes it in the parent. */
static void prepare(long i)
{
	delay_ns = 0;
	if (strcmp(scenario, "random") == 0)
		delay_ns = (int64_t)(mix(seed ^ (uint64_t)i) % 50000001ULL);
	if (strcmp(scenario, "ignore") == 0 && i == 1)
		signal(SIGTERM, SIG_IGN);
}

static void restore(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	delay_ns = 0;
}

/* become is the first thing process number i does. */
static void become(long i)
{
	if (strcmp(scenario, "stopped") == 0 && i % 10 == 1)
		kill((pid_t)syscall(SYS_getpid), SIGSTOP);
}

static void idle(void)
{
	for (;;)
		pause();
}

/* spawn creates process number i; it returns its pid (the daemon's
 * intermediate in the daemon scenario), or -1. */
static pid_t spawn(long i)
{
	pid_t pid;
	prepare(i);
	if (strcmp(scenario, "daemon") == 0) {
		pid_t mid = fork();
		if (mid == 0) {
			setsid();
			pid_t d = fork();
			if (d == 0) {
				become(i);
				idle();
			}
			_exit(d < 0 ? 1 : 0);
		}
		restore();
		if (mid > 0) {
			int st;
			while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				return -1;
		}
		return mid;
	}
	/* A sibling: PID 1 is its parent and gets its SIGCHLD. */
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		become(i);
		idle();
	}
	restore();
	return pid;
}

/* stopped reports whether /proc/PID/stat shows the process stopped. */
static int stopped(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	char *end = strrchr(buf, ')');
	return end && end[1] == ' ' && (end[2] == 'T' || end[2] == 't');
}

static char chunk[1 << 20];

int main(int argc, char **argv)
{
	int64_t t0 = mono();
	if (argc != 7) {
		emit('E', EINVAL, STEP_ARGS);
		return 2;
	}
	scenario = argv[1];
	long n = strtol(argv[2], NULL, 10);
	seed = strtoull(argv[3], NULL, 10);
	const char *cg = argv[4], *data = argv[5];
	long mib = strtol(argv[6], NULL, 10);

	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (strcmp(cg, "-") != 0) {
		int fd = open(cg, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			emit('E', errno, STEP_CGROUP);
		if (fd >= 0)
			close(fd);
	}
	restore(); /* the SIGTERM handler, inherited by every process */

	long made = 1;
	pid_t *stop = NULL;
	long nstop = 0;
	if (strcmp(scenario, "stopped") == 0)
		stop = calloc((size_t)n / 10 + 1, sizeof *stop);
	for (long i = 1; i < n; i++) {
		pid_t pid = spawn(i);
		if (pid < 0) {
			emit('E', errno, STEP_SPAWN);
			break;
		}
		made++;
		if (stop && i % 10 == 1)
			stop[nstop++] = pid;
	}
	prepare(0);
	become(0);
	for (long i = 0; i < nstop; i++) {
		int64_t until = mono() + 5000000000LL;
		while (!stopped(stop[i]) && mono() < until) {
			struct timespec d = { 0, 100000 };
			nanosleep(&d, NULL);
		}
		if (!stopped(stop[i]))
			emit('E', ETIMEDOUT, STEP_STOP);
	}
	if (strcmp(scenario, "pagecache") == 0) {
		memset(chunk, 'x', sizeof chunk);
		int fd = open(data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		for (int i = 0; fd >= 0 && i < mib; i++)
			if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
				emit('E', errno, STEP_WRITE);
				break;
			}
		if (fd < 0)
			emit('E', errno, STEP_WRITE);
		else
			close(fd);
	}
	emit('R', t0, made);
	idle();
}
