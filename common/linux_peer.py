#!/usr/bin/python3
"""linux_peer: the HTTP benchmark's reference, Debian's Linux kernel and nginx in QEMU.

    linux_peer.py build                        print the peer's kernel and initramfs paths
    linux_peer.py run [--port N] [--cpus N]    boot it; 127.0.0.1:N (8081) goes to its port 80

The peer boots on the same virtual machine as the kernel it is compared with (an e1000 on QEMU's
user networking, the same -cpu, -smp and accelerator), so the benchmark compares two guests
of one emulator, not a guest with the host.

It is built from Debian packages, fetched with `apt-get download` into build/linux-peer/debs/:
the kernel that linux-image-amd64 points to, nginx, the shared-library packages nginx depends
on (Depends followed through packages of Section libs; the binaries' DT_NEEDED entries then
pick the files), and busybox-static for /init and its tools. `dpkg-deb -x` unpacks them into a
scratch folder, and Python writes the initramfs (cpio newc, gzip) with only what the peer
runs: busybox, nginx with its libraries and loader, the e1000 module and those it depends on,
/init and nginx.conf. build/linux-peer/peer.json records the result with the hash of this
file; while both still match, nothing is downloaded or rebuilt.

/init (busybox sh) mounts /proc, /sys and /dev, loads the e1000 driver, gives eth0 the address
QEMU's user networking expects (10.0.2.15/24 via 10.0.2.2), raises the listen backlog limits,
starts nginx (a worker per vCPU) and prints `nginx-peer: ready` on the serial console once
nginx answers /health. Should nginx stop, /init powers the machine off and QEMU exits.
"""
import argparse
import collections
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import benchlib  # common/benchlib.py, which puts common/grader on the path
import nic  # common/grader/nic.py
import qemu  # common/qemu.py
from benchlib import BenchError

PEER_DIR = benchlib.REPO / "build" / "linux-peer"
DEBS = PEER_DIR / "debs"
RECORD = PEER_DIR / "peer.json"
KERNEL = PEER_DIR / "vmlinuz"
INITRD = PEER_DIR / "initrd.img"
HTTP_PORT = 80
READY_LINE = "nginx-peer: ready"
BOOT_TIMEOUT = 300  # seconds; the peer is ready about 10 s after QEMU starts, under TCG
NETWORK_DRIVER = "e1000"
PROGRAMS = ["/bin/busybox", "/usr/sbin/nginx"]
LIBRARY_FOLDERS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]  # ld.so's defaults
# console=ttyS0: the serial port is where /init's ready line is read. panic=-1 turns a panic
# into a reboot, which -no-reboot turns into QEMU exiting, instead of a hang until the timeout.
KERNEL_CMDLINE = "console=ttyS0 quiet panic=-1"

PeerImage = collections.namedtuple("PeerImage", "kernel initrd description")

NGINX_CONF = """\
# The HTTP benchmark's reference: GET /health answered with the kernel's body, on keep-alive
# connections that wrk keeps for the whole run.
user nobody nogroup;
worker_processes auto;  # one per vCPU
worker_rlimit_nofile 16384;  # above worker_connections: each connection is a descriptor
daemon off;
pid /run/nginx.pid;
error_log stderr warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;

    server {
        listen 80 backlog=65535;
        location = /health {
            default_type application/json;
            return 200 '{"status":"ok","model":"reference"}';
        }
    }
}
"""

# nginx's master runs as root and its workers as nobody; both names must resolve.
PASSWD = "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"

INIT = """\
#!/bin/busybox sh
# /init of the Linux peer: the network as QEMU's user networking expects it, then nginx.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
@LOAD_MODULES@
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
# nginx's listen backlog is capped by somaxconn, and half-open connections by this one.
echo 65535 > /proc/sys/net/core/somaxconn
echo 65535 > /proc/sys/net/ipv4/tcp_max_syn_backlog
nginx -e stderr &
nginx_pid=$!
until wget -q -O /dev/null http://127.0.0.1/health 2>/dev/null; do
    if ! kill -0 $nginx_pid 2>/dev/null; then
        echo "nginx-peer: nginx did not start"
        poweroff -f
    fi
    sleep 1
done
# Slirp learns the guest's MAC address from a frame the guest sends; forwarded connections
# need it.
ping -c 1 -W 5 10.0.2.2 >/dev/null
echo "@READY_LINE@"
wait $nginx_pid
echo "nginx-peer: nginx exited with status $?"
poweroff -f
"""


# ---------------------------------------------------------------------------------------------
# Debian packages

def run(argv, **options):
    """argv's standard output; BenchError with its error output if it fails."""
    result = subprocess.run([str(word) for word in argv], capture_output=True, text=True,
                            **options)
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(map(str, argv))}` failed: {result.stderr.strip()}")
    return result.stdout


def apt_fields(package):
    """The control fields of package's candidate version, or None when apt has no such real
    package (a virtual one, say)."""
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                            capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    fields = {}
    for line in result.stdout.split("\n\n")[0].splitlines():
        if not line[:1].isspace():  # lines that start with a space continue a field
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def required_fields(package):
    fields = apt_fields(package)
    if fields is None:
        raise BenchError(f"apt knows no package {package} (run apt-get update first)")
    return fields


def dependencies(fields):
    """The packages named by Pre-Depends and Depends: the first of each set of alternatives,
    without version or architecture."""
    names = []
    for field in ("Pre-Depends", "Depends"):
        for entry in fields.get(field, "").split(","):
            name = re.match(r"\s*([a-z0-9][a-z0-9+.-]*)", entry)
            if name and name[1] not in names:
                names.append(name[1])
    return names


def kernel_package():
    """The versioned package behind linux-image-amd64 (linux-image-6.1.0-NN-amd64)."""
    for name in dependencies(required_fields("linux-image-amd64")):
        if name.startswith("linux-image-"):
            return name
    raise BenchError("linux-image-amd64 depends on no linux-image-* package")


def library_packages(package):
    """The shared-library packages (Section libs) package depends on, directly or through one
    another. Other dependencies (nginx-common, iproute2) are not needed to serve."""
    found, pending = [], dependencies(required_fields(package))
    while pending:
        name = pending.pop(0)
        fields = apt_fields(name) if name not in found else None
        if fields and fields.get("Section", "").split("/")[-1] == "libs":  # or contrib/libs
            found.append(name)
            pending += dependencies(fields)
    return found


def cached_deb(package):
    """package's .deb in DEBS, downloaded the first time."""
    found = sorted(DEBS.glob(f"{package}_*.deb"))
    if not found:
        DEBS.mkdir(parents=True, exist_ok=True)
        print(f"linux-peer: apt-get download {package}", file=sys.stderr, flush=True)
        run(["apt-get", "download", package], cwd=DEBS)
        found = sorted(DEBS.glob(f"{package}_*.deb"))
        if not found:
            raise BenchError(f"apt-get download {package} wrote no {package}_*.deb")
    return found[-1]


def deb_version(deb):
    return run(["dpkg-deb", "--field", deb, "Version"]).strip()


# ---------------------------------------------------------------------------------------------
# What goes into the initramfs, from the unpacked packages under root

def inside(root, path):
    """root/path with symbolic links followed within root, as the guest would see them
    (Debian's /lib64/ld-linux-x86-64.so.2 is an absolute link)."""
    for _ in range(40):
        candidate = root / path.lstrip("/")
        if not candidate.is_symlink():
            return candidate
        target = os.readlink(candidate)
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    raise BenchError(f"too many symbolic links at {path} in the unpacked packages")


def elf_dependencies(path):
    """The program interpreter (or None) and the DT_NEEDED sonames of an ELF file."""
    text = run(["readelf", "--wide", "--program-headers", "--dynamic", path])
    interpreter = re.search(r"Requesting program interpreter: ([^\]]+)\]", text)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", text)
    return (interpreter[1] if interpreter else None), needed


def library_path(root, soname):
    for folder in LIBRARY_FOLDERS:
        if inside(root, f"{folder}/{soname}").is_file():
            return f"{folder}/{soname}"
    raise BenchError(f"none of the unpacked packages has {soname}")


def with_libraries(root, programs):
    """{path in the guest: file under root} for programs, the shared libraries they load,
    directly or through one another, and the dynamic loader."""
    files, pending = {}, list(programs)
    while pending:
        path = pending.pop()
        if path in files:
            continue
        files[path] = inside(root, path)
        if not files[path].is_file():
            raise BenchError(f"none of the unpacked packages has {path}")
        interpreter, needed = elf_dependencies(files[path])
        pending += [interpreter] if interpreter else []
        pending += [library_path(root, soname) for soname in needed]
    return files


MODULE_SUFFIX = re.compile(r"\.ko(\.xz|\.gz)?$")


def module_name(path):
    return MODULE_SUFFIX.sub("", path.name).replace("-", "_")


def module_contents(path):
    """A module file's ELF bytes: busybox insmod is given them uncompressed."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def modules_in_load_order(root, name):
    """[(module name, ELF bytes)] of module name and the modules it depends on, each after
    its dependencies. The package ships no modules.dep (depmod writes it at install time), so
    the dependencies come from each module's own .modinfo `depends=` string."""
    index = {module_name(path): path for path in root.glob("lib/modules/*/kernel/**/*.ko*")}
    ordered = {}

    def visit(module):
        if module in ordered:
            return
        if module not in index:
            raise BenchError(f"the kernel package has no module {module}")
        data = module_contents(index[module])
        # .modinfo is a run of NUL-terminated key=value strings.
        depends = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
        for dependency in (depends[1].decode().split(",") if depends else []):
            if dependency:
                visit(dependency.replace("-", "_"))
        ordered[module] = data

    visit(name)
    return list(ordered.items())


def init_script(modules):
    loads = "\n".join(f"insmod /lib/modules/{name}.ko" for name in modules)
    return INIT.replace("@LOAD_MODULES@", loads).replace("@READY_LINE@", READY_LINE)


class Cpio:
    """An initramfs in the kernel's format: cpio "newc" (magic 070701, thirteen header fields
    of eight hex digits; the name, then the data, each padded to four bytes). Parent folders
    are added before what they hold, since the kernel creates none on its own."""

    def __init__(self):
        self.chunks, self.folders = [], set()

    def folder(self, name):
        if name and name not in self.folders:
            self.folder(os.path.dirname(name))
            self.folders.add(name)
            self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, executable=False):
        self.folder(os.path.dirname(name))
        self._entry(name, stat.S_IFREG | (0o755 if executable else 0o644), data)

    def device(self, name, major, minor):
        self.folder(os.path.dirname(name))
        self._entry(name, stat.S_IFCHR | 0o600, device=(major, minor))

    def finish(self):
        """The archive's bytes, closed by its trailer entry."""
        self._entry("TRAILER!!!", 0)
        return b"".join(self.chunks)

    def _entry(self, name, mode, data=b"", device=(0, 0)):
        encoded = name.encode() + b"\0"
        inode = len(self.chunks) // 5 + 1
        fields = [inode, mode, 0, 0, 1, 0, len(data), 0, 0, *device, len(encoded), 0]
        header = b"070701" + b"".join(b"%08x" % field for field in fields)
        self.chunks += [header, encoded, padding(len(header) + len(encoded)), data,
                        padding(len(data))]


def padding(length):
    return b"\0" * (-length % 4)


def initramfs(root):
    """The gzipped initramfs of the peer, from the packages unpacked under root."""
    archive = Cpio()
    for folder in ("proc", "sys", "dev", "run", "tmp", "var/lib/nginx"):
        archive.folder(folder)
    # The kernel opens /dev/console for /init before /init can mount devtmpfs.
    archive.device("dev/console", 5, 1)
    for path, source in with_libraries(root, PROGRAMS).items():
        archive.file(path.lstrip("/"), source.read_bytes(), executable=True)
    modules = modules_in_load_order(root, NETWORK_DRIVER)
    for name, data in modules:
        archive.file(f"lib/modules/{name}.ko", data)
    archive.file("init", init_script([name for name, _ in modules]).encode(), executable=True)
    archive.file("etc/nginx/nginx.conf", NGINX_CONF.encode())
    archive.file("etc/passwd", PASSWD.encode())
    archive.file("etc/group", GROUP.encode())
    return gzip.compress(archive.finish(), mtime=0)


# ---------------------------------------------------------------------------------------------
# Building, cached

def recipe_hash():
    """This file's hash: the recipe of the initramfs is this file."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def cached_image():
    """The PeerImage in build/linux-peer when peer.json says this recipe built it; else
    None."""
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None
    fresh = record.get("recipe") == recipe_hash() and KERNEL.is_file() and INITRD.is_file()
    return PeerImage(KERNEL, INITRD, record["description"]) if fresh else None


def build():
    """The peer's PeerImage (kernel, initramfs, a line that names them), built the first time
    and again whenever this file changes."""
    image = cached_image()
    if image:
        return image
    print("linux-peer: building the Linux and nginx peer in build/linux-peer (once)",
          file=sys.stderr, flush=True)
    kernel = kernel_package()
    debs = {package: cached_deb(package)
            for package in [kernel, "nginx", *library_packages("nginx"), "busybox-static"]}
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    RECORD.unlink(missing_ok=True)  # written last: a build cut short is not taken as done
    with tempfile.TemporaryDirectory(dir=PEER_DIR, prefix="unpacked-") as scratch:
        root = Path(scratch)
        for deb in debs.values():
            run(["dpkg-deb", "-x", deb, root])
        vmlinuz = next(root.glob("boot/vmlinuz-*"), None)
        if vmlinuz is None:
            raise BenchError(f"{debs[kernel].name} has no boot/vmlinuz-*")
        initrd = initramfs(root)
        release = vmlinuz.name.removeprefix("vmlinuz-")
        shutil.copyfile(vmlinuz, KERNEL)
    INITRD.write_bytes(initrd)
    image = PeerImage(KERNEL, INITRD, f"Debian's Linux {release} ({deb_version(debs[kernel])}) "
                                      f"and nginx {deb_version(debs['nginx'])}")
    RECORD.write_text(json.dumps({"description": image.description, "recipe": recipe_hash(),
                                  "packages": [deb.name for deb in debs.values()]}, indent=1))
    return image


# ---------------------------------------------------------------------------------------------
# Booting

def qemu_argv(image, accel, memory, cpus, nic_args, serial="stdio"):
    """QEMU's command line for the peer: the machine qemu.build_argv gives the kernel (its
    -cpu, -smp, -m, accelerator and -no-reboot), booted with -kernel and -initrd."""
    return [qemu.QEMU, "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", KERNEL_CMDLINE, "-m", str(memory), "-smp", str(cpus),
            "-accel", accel, "-cpu", qemu.default_cpu(accel), "-no-reboot",
            "-display", "none", "-serial", serial, "-monitor", "none", *nic_args]


class LinuxPeer(benchlib.Kernel):
    """The peer in QEMU, its port 80 forwarded from self.port on 127.0.0.1; it is ready once
    /init prints READY_LINE."""

    READY_LINE = READY_LINE

    def qemu_argv(self, image, accel, memory, cpus, nic_args):
        return qemu_argv(image, accel, memory, cpus, nic_args)


def boot(image, accel, memory="256M", cpus=1, timeout=BOOT_TIMEOUT):
    """A LinuxPeer booted from image, once nginx serves."""
    peer = LinuxPeer(image, accel, HTTP_PORT, memory, cpus)
    peer.wait_ready(timeout)
    return peer


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "run"])
    parser.add_argument("--port", type=int, default=8081, help="host port for its port 80")
    parser.add_argument("--cpus", type=int, default=1, help="vCPUs (-smp)")
    parser.add_argument("--memory", default="256M", help="QEMU's -m")
    return parser.parse_args()


def main():
    args = parse_args()
    image = build()
    if args.command == "build":
        print(image.kernel)
        print(image.initrd)
        return 0
    print(f"linux-peer: {image.description}; http://127.0.0.1:{args.port}/health once it "
          f"prints {READY_LINE!r}; quit with Ctrl-A X", file=sys.stderr)
    argv = qemu_argv(image, qemu.choose_accel(), args.memory, args.cpus,
                     nic.user_nic([(args.port, HTTP_PORT)]), serial="mon:stdio")
    return subprocess.call(argv)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"linux-peer: {error}")
