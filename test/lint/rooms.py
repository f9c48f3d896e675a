#!/usr/bin/env python3
"""test/lint/rooms.py - check the rooms rule (shared/docs/style.md "Rooms").

usage: rooms.py SOURCE_ROOT [BUILD_ROOT] [CC...]

Each folder under src/ is a room. This check reads every #include of every
.c/.h file under src/ and asserts:

  - casa includes only its own headers, C and POSIX headers (less threads,
    sockets and logging, which casa must not use) and openssl/;
  - a room includes another room's header only where the table allows:
    fastpath casa.h; control fastpath.h and casa.h; agent and xdp casa.h;
    fastpath never includes a control header;
  - system libraries stay in the rooms that may link them: DPDK (rte_*.h)
    in fastpath only, liburcu in fastpath and control, libconfig in control,
    libbpf in agent and xdp, openssl in casa and control, libmicrohttpd
    in control.

Then it checks that the build holds the line, not just the text:

  - `CC -fsyntax-only -I src/casa probe.c` fails with "No such file" for a
    probe including <rte_mbuf.h> (and succeeds for one including <casa.h>);
  - with BUILD_ROOT, the real compile command of each room's library (from
    compile_commands.json) cannot find <rte_mbuf.h> outside fastpath, nor
    another room's header the table forbids.

Exit status 0 when all hold, 1 with one line per violation otherwise.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

# Rooms and the headers of other rooms each may include (style.md "Rooms").
ROOMS = {
    "casa": set(),
    "fastpath": {"casa.h"},
    "control": {"fastpath.h", "casa.h"},
    "agent": {"casa.h"},
    "xdp": {"casa.h"},
}
# A room folder not in the table yet gets the strictest cross-room rule.
DEFAULT_FOREIGN = {"casa.h"}

# C11 and POSIX.1-2017 headers.
C_HEADERS = set(
    """assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h
    limits.h locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h
    stdbool.h stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h
    tgmath.h threads.h time.h uchar.h wchar.h wctype.h""".split())
POSIX_HEADERS = set(
    """aio.h arpa/inet.h cpio.h dirent.h dlfcn.h fcntl.h fmtmsg.h fnmatch.h
    ftw.h glob.h grp.h iconv.h langinfo.h libgen.h monetary.h mqueue.h ndbm.h
    net/if.h netdb.h netinet/in.h netinet/tcp.h nl_types.h poll.h pthread.h
    pwd.h regex.h sched.h search.h semaphore.h spawn.h strings.h stropts.h
    sys/ipc.h sys/mman.h sys/msg.h sys/resource.h sys/select.h sys/sem.h
    sys/shm.h sys/socket.h sys/stat.h sys/statvfs.h sys/time.h sys/times.h
    sys/types.h sys/uio.h sys/un.h sys/utsname.h sys/wait.h syslog.h tar.h
    termios.h trace.h ulimit.h unistd.h utime.h utmpx.h wordexp.h""".split())
# casa has no threads, no sockets and no logging (style.md "Rooms").
CASA_FORBIDDEN = {
    "threads.h": "threads", "pthread.h": "threads", "semaphore.h": "threads",
    "sys/socket.h": "sockets", "netdb.h": "sockets", "sys/un.h": "sockets",
    "net/if.h": "sockets", "syslog.h": "logging", "mqueue.h": "IPC",
    "sys/msg.h": "IPC", "sys/sem.h": "IPC", "sys/shm.h": "IPC",
    "spawn.h": "processes", "dlfcn.h": "dynamic loading",
}
CASA_LIBS = ("openssl/",)

# Programs that live in a room's folder but are not part of its library, and
# the extra system headers meson gives them alone (src/casa/meson.build).
PROGRAM_EXTRA = {
    "src/casa/casadump.c": ("pcap.h", "pcap/"),
}

# System libraries and the rooms that may link them (style.md "Rooms").
LIBRARY_ROOMS = [
    # (description, predicate on the include name, rooms allowed)
    ("DPDK", lambda n: re.match(r"(dpdk/)?(rte_|generic/rte_)", n) is not None,
     {"fastpath"}),
    ("liburcu", lambda n: n.startswith("urcu"), {"fastpath", "control"}),
    ("libconfig", lambda n: n == "libconfig.h", {"control"}),
    ("libbpf", lambda n: n.startswith("bpf/") or n == "linux/bpf.h",
     {"agent", "xdp"}),
    ("openssl", lambda n: n.startswith("openssl/"), {"casa", "control"}),
    ("libmicrohttpd", lambda n: n == "microhttpd.h", {"control"}),
]

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.M)
COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)

violations = []


def violation(msg):
    violations.append(msg)
    print("rooms: " + msg)


def strip_comments(text):
    """Blanks comments, keeping line numbers."""
    return COMMENT_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = strip_comments(f.read())
    for m in INCLUDE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        yield line, m.group(1), m.group(2).strip()


def room_files(src):
    rooms = {}
    for room in sorted(os.listdir(src)):
        top = os.path.join(src, room)
        if not os.path.isdir(top):
            continue
        files = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith((".c", ".h")):
                    files.append(os.path.join(dirpath, name))
        rooms[room] = files
    return rooms


def check_system_include(room, rel, line, name):
    where = f"{rel}:{line}"
    for desc, pred, allowed in LIBRARY_ROOMS:
        if pred(name):
            if room not in allowed:
                violation(f"{where}: {room} includes <{name}>: {desc} belongs to "
                          f"{', '.join(sorted(allowed))} only")
            return
    if room != "casa":
        return
    extra = PROGRAM_EXTRA.get(rel, ())
    if name in CASA_FORBIDDEN:
        violation(f"{where}: casa includes <{name}>: casa has no {CASA_FORBIDDEN[name]}")
    elif name in C_HEADERS or name in POSIX_HEADERS or name.startswith(CASA_LIBS):
        return
    elif any(name == e or (e.endswith("/") and name.startswith(e)) for e in extra):
        return
    else:
        violation(f"{where}: casa includes <{name}>: casa may include only its own, "
                  "C/POSIX and openssl/ headers")


def check_text(root):
    src = os.path.join(root, "src")
    if not os.path.isdir(src):
        print("rooms: no src/ folder")
        return {}
    rooms = room_files(src)
    # Which room owns each header name.
    owners = {}
    for room, files in rooms.items():
        for f in files:
            if f.endswith(".h"):
                owners.setdefault(os.path.basename(f), set()).add(room)
    for room, files in rooms.items():
        foreign_ok = ROOMS.get(room, DEFAULT_FOREIGN)
        top = os.path.join(src, room)
        for f in files:
            rel = os.path.relpath(f, root)
            for line, kind, name in includes(f):
                where = f"{rel}:{line}"
                base = os.path.basename(name)
                target = None
                if kind == '"':
                    cand = os.path.normpath(os.path.join(os.path.dirname(f), name))
                    if os.path.isfile(cand):
                        target = cand
                if target is not None:
                    inside = os.path.commonpath([target, top]) == top
                    if inside:
                        continue
                    other = os.path.relpath(target, src).split(os.sep)[0]
                    if base not in foreign_ok:
                        violation(f"{where}: {room} includes {other}'s \"{name}\"")
                    continue
                if base in owners and room not in owners[base]:
                    # Another room's header found through an include path.
                    other = ", ".join(sorted(owners[base]))
                    if base not in foreign_ok:
                        violation(f"{where}: {room} includes {other}'s {kind}{name}"
                                  f"{'>' if kind == '<' else kind}")
                    continue
                if base in owners:
                    continue  # its own header through an include path
                if kind == '"' and room == "casa":
                    violation(f'{where}: casa includes "{name}", which is not a casa header')
                    continue
                if kind == '"' and name.endswith(".skel.h"):
                    continue  # generated BPF skeleton, in the build folder
                check_system_include(room, rel, line, name)
    return rooms


def run_probe(cmd, cwd, text, tmp):
    probe = os.path.join(tmp, "probe.c")
    with open(probe, "w") as f:
        f.write(text)
    p = subprocess.run(cmd + [probe], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def expect_missing(label, cmd, cwd, header, tmp):
    """The probe including header must fail to compile with 'No such file'."""
    rc, out = run_probe(cmd, cwd, f"#include {header}\nint probe;\n", tmp)
    if rc == 0:
        violation(f"{label}: {header} compiles; the room wall is open")
    elif "No such file" not in out and "file not found" not in out:
        violation(f"{label}: {header} failed for another reason than a missing file:\n"
                  + out.strip())
    else:
        print(f"rooms: {label}: {header} not found, as required")


def expect_found(label, cmd, cwd, header, tmp):
    """Positive control: the same command compiles an allowed include."""
    rc, out = run_probe(cmd, cwd, f"#include {header}\nint probe;\n", tmp)
    if rc != 0:
        violation(f"{label}: {header} does not compile, so the probe proves nothing:\n"
                  + out.strip())
        return False
    return True


def check_plain_probe(root, cc, tmp):
    cmd = cc + ["-fsyntax-only", "-I", "src/casa"]
    label = f"'{' '.join(cmd)} probe.c'"
    if expect_found(label, cmd, root, "<casa.h>", tmp):
        expect_missing(label, cmd, root, "<rte_mbuf.h>", tmp)


def library_command(entries, build, room):
    """The compile command of a source of room's own library, made -fsyntax-only."""
    for e in entries:
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        directory = e.get("directory", build)
        src = os.path.normpath(os.path.join(directory, e["file"]))
        if f"{os.sep}src{os.sep}{room}{os.sep}" not in src:
            continue
        try:
            out = args[args.index("-o") + 1]
        except (ValueError, IndexError):
            continue
        # The room's library objects: src/ROOM/libROOM*.p/ (not a program in the folder).
        if not re.match(rf"src/{re.escape(room)}/lib[^/]*\.p/", out):
            continue
        cmd, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MQ", "-MT"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD") or a == e["file"]:
                continue
            cmd.append(a)
        return cmd + ["-fsyntax-only"], directory
    return None, None


def check_build_probes(root, build, rooms, tmp):
    path = os.path.join(build, "compile_commands.json")
    if not os.path.isfile(path):
        print(f"rooms: no {path}; build probes skipped")
        return
    with open(path) as f:
        entries = json.load(f)
    public = {}
    for room, files in rooms.items():
        for f in files:
            if os.path.basename(f) == f"{room}.h":
                public[room] = f"{room}.h"
    for room in sorted(rooms):
        cmd, cwd = library_command(entries, build, room)
        if cmd is None:
            print(f"rooms: {room}: no library compile command in the build; probe skipped")
            continue
        label = f"{room} library compile command"
        if "casa" in public and not expect_found(label, cmd, cwd, "<casa.h>", tmp):
            continue
        if room != "fastpath":
            expect_missing(label, cmd, cwd, "<rte_mbuf.h>", tmp)
        for other, header in sorted(public.items()):
            if other != room and header not in ROOMS.get(room, DEFAULT_FOREIGN):
                expect_missing(label, cmd, cwd, f"<{header}>", tmp)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1])
    build = os.path.abspath(argv[2]) if len(argv) > 2 and argv[2] else None
    cc = argv[3:] or [os.environ.get("CC", "cc")]
    rooms = check_text(root)
    with tempfile.TemporaryDirectory(prefix="rooms-probe.") as tmp:
        check_plain_probe(root, cc, tmp)
        if build:
            check_build_probes(root, build, rooms, tmp)
    n = sum(len(f) for f in rooms.values())
    print(f"rooms: {len(rooms)} rooms, {n} files, {len(violations)} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
