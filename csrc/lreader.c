/*
 * lreader.c — the Lua binding's line reader (class "mxroute.lines"), for
 * the mxroute command's `-f FILE` inputs: lines are taken only when they
 * have arrived, so that waiting for the next line of a pipe or terminal
 * never stops the resolutions in flight, the output, or SIGINT/SIGTERM
 * (the command polls the reader's descriptor with the resolver's).
 *
 *   core.lines(path)      open a file for reading; nil, message on error
 *   core.lines(0)         standard input (left open by close)
 *   lr:next([block])      the next line (without "\n" / "\r\n"), or
 *                         nil, "wait" when none has arrived yet, or nil
 *                         at the end. With block, waits for one.
 *   lr:pollfd()           the descriptor (readable when data is there)
 *   lr:close(), __gc      close (never standard input)
 *
 * The descriptor is never made non-blocking (stdin's file description is
 * shared with the shell): read(2) runs only after poll(2) said readable,
 * and then returns what has arrived. A line longer than LINE_MAX_LEN is
 * cut there (its rest dropped): such an input is invalid in any case.
 */
#include "lmxroute.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES_MT "mxroute.lines"
#define LINE_MAX_LEN 65536
#define CHUNK 65536

typedef struct lreader {
  int fd;        /* -1 once closed */
  int own;       /* close fd at close */
  int eof;       /* read returned 0 (or an error) */
  int skipping;  /* dropping the rest of an over-long line */
  char *buf;     /* malloc'd; freed by close/__gc (never by a raise) */
  size_t start;  /* first unread octet */
  size_t len;    /* octets in buf */
  size_t cap;
} lreader;

static lreader *check_reader(lua_State *L)
{
  lreader *r = (lreader *)luaL_checkudata(L, 1, LINES_MT);
  if (r->fd < 0)
    luaL_error(L, "mxroute: line reader is closed");
  return r;
}

static int reader_close(lua_State *L)
{
  lreader *r = (lreader *)luaL_checkudata(L, 1, LINES_MT);
  if (r->fd >= 0 && r->own)
    (void)close(r->fd);
  r->fd = -1;
  free(r->buf);
  r->buf = NULL;
  r->len = r->start = r->cap = 0;
  return 0;
}

static int lines_new(lua_State *L)
{
  lreader *r = (lreader *)mxr_newud(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->fd = -1; /* closed first, so that __gc is always safe */
  luaL_setmetatable(L, LINES_MT);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    if (luaL_checkinteger(L, 1) != 0)
      return luaL_argerror(L, 1, "only 0 (standard input)");
    r->fd = 0;
    r->own = 0;
  } else {
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, strerror(e));
      lua_pushliteral(L, "BADOPT");
      return 3;
    }
    r->fd = fd;
    r->own = 1;
  }
  r->buf = (char *)malloc(CHUNK);
  if (r->buf == NULL) {
    reader_close(L);
    lua_pushnil(L);
    lua_pushliteral(L, "line reader: out of memory");
    lua_pushliteral(L, "NOMEM");
    return 3;
  }
  r->cap = CHUNK;
  return 1;
}

/* Room for CHUNK more octets after the unread ones; 0 on OOM. */
static int make_room(lreader *r)
{
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->len - r->start);
    r->len -= r->start;
    r->start = 0;
  }
  if (r->cap - r->len < CHUNK) {
    size_t cap = r->len + CHUNK;
    char *nb = (char *)realloc(r->buf, cap);
    if (nb == NULL)
      return 0;
    r->buf = nb;
    r->cap = cap;
  }
  return 1;
}

/* Read once what has arrived; wait for it only if block. */
static void fill(lreader *r, int block)
{
  struct pollfd p;
  ssize_t n;
  p.fd = r->fd;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, block ? -1 : 0) <= 0)
    return; /* nothing yet (or EINTR: the caller comes back) */
  if (!make_room(r)) {
    r->eof = 1; /* out of memory: end the input rather than spin */
    return;
  }
  n = read(r->fd, r->buf + r->len, CHUNK);
  if (n > 0)
    r->len += (size_t)n;
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    r->eof = 1;
}

/* Push the complete line at the head of the buffer and return 1, or
 * return 0 when there is none (end of input: the last unterminated one). */
static int take_line(lua_State *L, lreader *r)
{
  for (;;) {
    const char *p = r->buf + r->start;
    size_t avail = r->len - r->start;
    const char *nl = avail ? (const char *)memchr(p, '\n', avail) : NULL;
    size_t n;
    if (nl == NULL) {
      if (avail > LINE_MAX_LEN && !r->skipping) {
        /* over-long: give its head now, drop the rest up to '\n' */
        lua_pushlstring(L, p, LINE_MAX_LEN);
        r->start = r->len;
        r->skipping = 1;
        return 1;
      }
      if (r->skipping) {
        r->start = r->len;
        return 0;
      }
      if (!r->eof || avail == 0)
        return 0;
      nl = p + avail; /* the last line has no newline */
    }
    n = (size_t)(nl - p);
    r->start += n + (nl < p + avail ? 1 : 0);
    if (r->skipping) {
      r->skipping = 0;
      continue;
    }
    if (n > 0 && p[n - 1] == '\r')
      n--;
    lua_pushlstring(L, p, n);
    return 1;
  }
}

static int reader_next(lua_State *L)
{
  lreader *r = check_reader(L);
  int block = lua_toboolean(L, 2);
  for (;;) {
    if (take_line(L, r))
      return 1;
    if (r->eof) {
      lua_pushnil(L);
      return 1;
    }
    fill(r, block);
    if (take_line(L, r))
      return 1;
    if (r->eof) {
      lua_pushnil(L);
      return 1;
    }
    if (!block) {
      lua_pushnil(L);
      lua_pushliteral(L, "wait");
      return 2;
    }
  }
}

static int reader_pollfd(lua_State *L)
{
  lua_pushinteger(L, check_reader(L)->fd);
  return 1;
}

static const luaL_Reg reader_m[] = {
    {"next", reader_next}, {"pollfd", reader_pollfd},
    {"close", reader_close}, {NULL, NULL}};

void mxr_lua_open_reader(lua_State *L, int lib)
{
  mxr_lua_new_class(L, LINES_MT, reader_m, reader_close);
  lua_pushcfunction(L, lines_new);
  lua_setfield(L, lib, "lines");
}
