#!/usr/bin/env python3
"""clang-tidy over the compile_commands.json entries that FILES selects, skipping those that
passed before with exactly the same inputs (scripts/lint calls it; CARTESIA_LINT_CACHE=0
there runs run-clang-tidy-14 instead).

The key of a source file covers everything that can change clang-tidy's verdict on it:
clang-tidy's version, every .clang-tidy of the tree and above it (InheritParentConfig),
the header filter's folders, each of the file's compile commands, and the path and
contents of every file those commands include (from the preprocessor's -M dependency
list, made afresh on every run, so that an edited, added or shadowing header changes
the key; contents include the comments, where NOLINT lives). Paths under the checkout
are written relative to it, so that a clone at another path (CI's, or scripts/lint
--from-src's temporary copy) hits. Only passes are stored: a file with any finding, or
whose dependencies cannot be listed, is checked every time.

The log keeps run-clang-tidy's format (each file's command line, then its output), and
names each skipped file on a line `cached: <file>`, which scripts/lint counts as checked.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time

# Bump when what the key covers, or how clang-tidy is run, changes.
KEY_VERSION = "cartesia-lint-cache 1"
TIDY = "clang-tidy-14"
PRUNE_DAYS = 30


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Contents:
    """The hash of each file's contents, read once per run (most TUs share Boost's headers)."""

    def __init__(self):
        self._hashes = {}
        self._lock = threading.Lock()

    def __call__(self, path):
        with self._lock:
            if path in self._hashes:
                return self._hashes[path]
        with open(path, "rb") as f:
            digest = sha256(f.read())
        with self._lock:
            self._hashes[path] = digest
        return digest


def command_args(entry):
    if "arguments" in entry:
        return list(entry["arguments"])
    return shlex.split(entry["command"])


def dependency_command(args):
    """The compile command turned into one that prints its dependencies (-M) on stdout."""
    out = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in ("-o", "-MF", "-MT", "-MQ"):
            skip_next = True
        elif arg in ("-c", "-MD", "-MMD"):
            pass
        else:
            out.append(arg)
    return out + ["-M"]


def parse_depfile(text):
    """The prerequisites of a make rule as -M writes it (escaped spaces, continued lines)."""
    text = text.replace("\\\n", " ")
    _, _, prerequisites = text.partition(": ")
    words = re.findall(r"(?:\\.|[^\s\\])+", prerequisites)
    return [re.sub(r"\\(.)", r"\1", word) for word in words]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--root", required=True, help="the checkout, as compile_commands.json names it")
    parser.add_argument("--header-filter", required=True)
    parser.add_argument("--header-dirs", required=True, help="the header filter's folders, relative")
    parser.add_argument("--files", required=True, help="regex selecting the files, as run-clang-tidy's")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache-dir", required=True)
    args = parser.parse_args()

    root = args.root.rstrip("/")

    def relative(text):
        return text.replace(root, "@ROOT@")

    with open(os.path.join(args.build_dir, "compile_commands.json")) as f:
        database = json.load(f)
    # As run-clang-tidy: each file once, selected by a regex search of its absolute path;
    # clang-tidy then checks it under every command the database has for it.
    commands = {}
    for entry in database:
        name = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
        commands.setdefault(name, []).append(entry)
    selected = sorted(name for name in commands if re.search(args.files, name))

    common = hashlib.sha256()
    common.update(KEY_VERSION.encode() + b"\0")
    common.update(subprocess.run([TIDY, "--version"], check=True, capture_output=True).stdout)
    common.update(b"\0header dirs " + args.header_dirs.encode() + b"\0")
    listed = subprocess.run(["git", "ls-files", "-z", "*.clang-tidy", "*.clang-format"], check=True,
                            capture_output=True, cwd=root).stdout.decode().split("\0")
    for config in sorted(filter(None, listed)):
        with open(os.path.join(root, config), "rb") as f:
            common.update(b"\0config " + config.encode() + b"\0" + f.read())
    parent = os.path.dirname(root)
    while True:
        inherited = os.path.join(parent, ".clang-tidy")
        if os.path.isfile(inherited):
            with open(inherited, "rb") as f:
                common.update(b"\0inherited config\0" + f.read())
        if parent == os.path.dirname(parent):
            break
        parent = os.path.dirname(parent)
    common = common.hexdigest()

    contents = Contents()

    def key_of(name):
        """The file's key, or None when its dependencies cannot be listed."""
        key = hashlib.sha256(common.encode())
        key.update(b"\0file " + relative(name).encode())
        for entry in commands[name]:
            arguments = command_args(entry)
            key.update(b"\0command\0" + relative(entry["directory"]).encode())
            for arg in arguments:
                key.update(b"\0" + relative(arg).encode())
            listing = subprocess.run(dependency_command(arguments), cwd=entry["directory"],
                                     capture_output=True, text=True)
            if listing.returncode != 0:
                return None
            for dependency in sorted(set(parse_depfile(listing.stdout))):
                path = os.path.normpath(os.path.join(entry["directory"], dependency))
                try:
                    digest = contents(path)
                except OSError:
                    return None
                key.update(b"\0dep " + relative(path).encode() + b" " + digest.encode())
        return key.hexdigest()

    def entry_path(key):
        return os.path.join(args.cache_dir, key[:2], key)

    lock = threading.Lock()
    counts = {"cached": 0, "run": 0, "failed": 0, "uncacheable": 0}

    def check(name):
        key = key_of(name)
        if key is not None and os.path.exists(entry_path(key)):
            # A hit renews the entry, so that the pruning below keeps what is in use.
            os.utime(entry_path(key))
            with lock:
                print("cached: " + name, flush=True)
                counts["cached"] += 1
            return
        # The command line run-clang-tidy-14 would run.
        invocation = [TIDY, "--use-color", "-header-filter=" + args.header_filter, "-p=" + args.build_dir,
                      "-quiet", name]
        result = subprocess.run(invocation, capture_output=True, text=True)
        output = result.stdout + result.stderr
        clean = result.returncode == 0 and not re.search(r"(warning|error):", output)
        with lock:
            print(" ".join(invocation) + "\n" + output, end="" if output.endswith("\n") or not output else "\n",
                  flush=True)
            counts["run"] += 1
            if result.returncode != 0:
                counts["failed"] += 1
            if key is None:
                counts["uncacheable"] += 1
        if clean and key is not None:
            path = entry_path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Written whole, then renamed: a concurrent or interrupted run never sees half an entry.
            fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "w") as f:
                f.write(relative(name) + "\n")
            os.replace(temporary, path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(check, name) for name in selected]:
            future.result()

    # Entries are tiny but never overwritten (an edit makes a new key): drop those unused
    # for PRUNE_DAYS.
    cutoff = time.time() - PRUNE_DAYS * 86400
    for folder, _, names in os.walk(args.cache_dir):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
            except OSError:
                pass  # removed by a concurrent run

    print("lint-cache: {cached} of {total} files skipped (passed before with the same inputs), {run} checked"
          " ({failed} failed, {uncacheable} without a dependency list); cache {dir}".format(
              total=len(selected), dir=args.cache_dir, **counts), flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
