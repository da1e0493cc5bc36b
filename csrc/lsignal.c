/*
 * lsignal.c — the Lua binding's signal watcher (class "mxroute.sigwatch"),
 * for programs such as the mxroute command that must end cleanly on
 * SIGINT/SIGTERM while they wait in C (epoll) for DNS answers.
 *
 *   core.sigwatch()       block SIGINT and SIGTERM, receive them on a
 *                         signalfd(2) instead; returns the watcher
 *   w:pollfd()            the signalfd (readable while a signal is pending)
 *   w:caught()            "SIGINT" / "SIGTERM" once one has arrived, else nil
 *   w:wait(timeout, fd...) poll(2) until a signal or one of the fds
 *                         (up to 4; nil ones skipped) is readable, or
 *                         timeout seconds (nil: no limit) have passed
 *   w:close(), __gc       drain the signalfd, restore the signal mask
 *
 * Why a signalfd and not a handler setting a flag: a flag set just before
 * epoll_wait starts is seen only when the wait ends (a lost wake-up); a
 * blocked signal stays pending on the fd, and polling the fd together
 * with the resolver's cannot miss it. Plain Lua has no signal API, and
 * this works alike under Lua 5.1/LuaJIT and 5.4 with no other module.
 */
#include "lmxroute.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIG_MT "mxroute.sigwatch"

typedef struct lsig {
  int fd;          /* -1 once closed */
  int caught;      /* the first signal received, or 0 */
  sigset_t old;    /* the mask to restore */
} lsig;

static lsig *check_sig(lua_State *L)
{
  lsig *w = (lsig *)luaL_checkudata(L, 1, SIG_MT);
  if (w->fd < 0)
    luaL_error(L, "mxroute: signal watcher is closed");
  return w;
}

/* Read whatever is pending (non-blocking fd); remember the first. */
static void drain(lsig *w)
{
  struct signalfd_siginfo si;
  for (;;) {
    ssize_t n = read(w->fd, &si, sizeof si);
    if (n == (ssize_t)sizeof si) {
      if (w->caught == 0)
        w->caught = (int)si.ssi_signo;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break; /* EAGAIN: nothing more */
  }
}

static int sig_new(lua_State *L)
{
  sigset_t set;
  lsig *w = (lsig *)mxr_newud(L, sizeof *w);
  w->fd = -1; /* closed first, so that __gc is always safe */
  w->caught = 0;
  luaL_setmetatable(L, SIG_MT);
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, &w->old) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, "sigwatch: cannot block signals");
    lua_pushliteral(L, "NOMEM");
    return 3;
  }
  w->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (w->fd < 0) {
    (void)sigprocmask(SIG_SETMASK, &w->old, NULL);
    lua_pushnil(L);
    lua_pushstring(L, "sigwatch: cannot create a signalfd");
    lua_pushliteral(L, "NOMEM");
    return 3;
  }
  return 1;
}

static int sig_pollfd(lua_State *L)
{
  lua_pushinteger(L, check_sig(L)->fd);
  return 1;
}

static int sig_caught(lua_State *L)
{
  lsig *w = check_sig(L);
  drain(w);
  if (w->caught == SIGINT)
    lua_pushliteral(L, "SIGINT");
  else if (w->caught == SIGTERM)
    lua_pushliteral(L, "SIGTERM");
  else
    lua_pushnil(L);
  return 1;
}

/* Milliseconds for poll(2): -1 for nil, rounded up so that a wait for a
 * timer never ends just before it is due. */
static int timeout_ms(lua_State *L, int idx)
{
  double t;
  int ms;
  if (lua_isnoneornil(L, idx))
    return -1;
  t = (double)luaL_checknumber(L, idx);
  if (!(t > 0))
    return 0;
  if (t > 86400.0)
    t = 86400.0;
  ms = (int)(t * 1000.0);
  return (double)ms < t * 1000.0 ? ms + 1 : ms;
}

/* w:wait(timeout, fd...): up to 4 descriptors besides the signalfd; nil
 * entries are skipped. */
static int sig_wait(lua_State *L)
{
  lsig *w = check_sig(L);
  struct pollfd pfd[5];
  nfds_t n = 1;
  int i, top = lua_gettop(L);
  int ms = timeout_ms(L, 2);
  pfd[0].fd = w->fd;
  pfd[0].events = POLLIN;
  pfd[0].revents = 0;
  if (top > 6)
    return luaL_error(L, "mxroute: sigwatch:wait: at most 4 descriptors");
  for (i = 3; i <= top; i++) {
    lua_Integer fd;
    if (lua_isnil(L, i))
      continue;
    fd = luaL_checkinteger(L, i);
    if (fd < 0 || fd > 0x7fffffff)
      return luaL_argerror(L, i, "not a file descriptor");
    pfd[n].fd = (int)fd;
    pfd[n].events = POLLIN;
    pfd[n].revents = 0;
    n++;
  }
  /* EINTR (another signal, e.g. SIGCHLD): return, the caller loops. */
  (void)poll(pfd, n, ms);
  return 0;
}

static int sig_close(lua_State *L)
{
  lsig *w = (lsig *)luaL_checkudata(L, 1, SIG_MT);
  if (w->fd >= 0) {
    /* consume what is pending first: unblocking a pending SIGINT would
     * kill the process with it */
    drain(w);
    (void)close(w->fd);
    w->fd = -1;
    (void)sigprocmask(SIG_SETMASK, &w->old, NULL);
  }
  return 0;
}

static const luaL_Reg sig_m[] = {
    {"pollfd", sig_pollfd}, {"caught", sig_caught}, {"wait", sig_wait},
    {"close", sig_close},   {NULL, NULL}};

void mxr_lua_open_signal(lua_State *L, int lib)
{
  mxr_lua_new_class(L, SIG_MT, sig_m, sig_close);
  lua_pushcfunction(L, sig_new);
  lua_setfield(L, lib, "sigwatch");
}
