"""Real SSH hosts on this machine: podman containers on their own network.

    scripts/testbed up [--nodes N] [--shared-home] [--name NAME] [--link-rate RATE] [--home-size NODE=SIZE ...]
    scripts/testbed down [--name NAME]
    scripts/testbed status [--name NAME]

Each node runs a real sshd, has python3, its own address on a network of its
own, and a non-root user (no sudo) with a stock Debian ~/.bashrc, no keys and
no known_hosts. `up` prints, as its last line, a directory holding cluster.yaml
(GTSfM's shape), inventory.yml, ssh_config, known_hosts, the controller's key
and vars.yml.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEDS_DIR = Path(os.environ.get("GTSFM_TESTBED_DIR", ROOT / ".testbeds"))
CACHE_DIR = Path(os.environ.get("GTSFM_TESTBED_CACHE", Path.home() / ".cache" / "gtsfm-testbed"))
SUITE = "bookworm"
MIRROR = os.environ.get("GTSFM_TESTBED_MIRROR", "http://deb.debian.org/debian")
USER = "gtsfm"
UID = 1000
# Dask from Debian lets tests run a real SSHCluster across nodes, air-gapped.
# debootstrap resolves no virtual packages: python3-cffi-backend is named for cryptography.
PACKAGES = [
    "openssh-server",
    "openssh-client",
    "python3",
    "python3-asyncssh",
    "python3-cffi-backend",
    "python3-distributed",
    "sshpass",
    "iproute2",
    "procps",
    "rsync",
    "ca-certificates",
    "bzip2",
    "xz-utils",
]
# Anything below that changes what the image holds must change this recipe.
SSHD_CONF = f"""\
# gtsfm testbed: the controller's key lives outside the user's home, so a new
# node starts with no ~/.ssh at all, like a freshly created lab account.
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
# pam_loginuid needs CAP_AUDIT_CONTROL, which containers lack.
UsePAM no
MaxStartups 100:30:200
MaxSessions 50
AllowUsers {USER}
"""
INIT = """\
#!/bin/sh
# Each node makes its own host keys at first start: the image carries none.
set -e
mkdir -p /run/sshd
ssh-keygen -A >/dev/null
exec /usr/sbin/sshd -D -e
"""
RECIPE = json.dumps([SUITE, PACKAGES, SSHD_CONF, INIT, USER, UID, 3])
IMAGE = "localhost/gtsfm-testbed-node:" + hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
PODMAN_RUN_OPTS = [
    # crun refuses this host's hybrid cgroups; the default ulimits cannot be set here.
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
    "--init",
    "--cap-add",
    "NET_ADMIN",
]
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
# conda_env on a bed (no conda-forge or GitHub here): the uv manager from a wheelhouse the controller builds once
# from PyPI for the nodes' Python (Debian bookworm: CPython 3.11, glibc 2.36) and ships to the building node.
WHEELHOUSE_PACKAGES = ["dask", "distributed", "asyncssh", "uv"]
WHEELHOUSE = CACHE_DIR / ("wheelhouse-" + hashlib.sha256(json.dumps(WHEELHOUSE_PACKAGES).encode()).hexdigest()[:12])
CHECKOUT_STAND_IN = ROOT / "extensions" / "molecule" / "resources" / "files" / "gtsfm_checkout"


def log(msg: str) -> None:
    print(f"testbed: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, text=True, capture_output=capture, check=False, **kw)
    if check and res.returncode != 0:
        err = (res.stderr or "").strip() if capture else ""
        raise SystemExit(f"testbed: command failed ({res.returncode}): {' '.join(cmd)}\n{err}")
    return res


def podman(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return run(["podman", *args], check=check, **kw)


def ensure_tools() -> None:
    missing = [t for t in ("podman", "runc", "debootstrap", "ssh", "ssh-keygen", "tc") if not shutil.which(t)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"testbed: missing {', '.join(missing)}; install podman runc debootstrap openssh-client iproute2"
        )
    log(f"installing {', '.join(missing)} from apt")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env)
    run(
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "podman",
            "runc",
            "debootstrap",
            "openssh-client",
            "iproute2",
            "catatonit",
            "uidmap",
        ],
        env=env,
    )


def ensure_image() -> None:
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / (IMAGE.split(":")[1] + ".tar")
    if not tarball.exists():
        build_rootfs(tarball)
    log(f"importing {IMAGE}")
    podman(
        "import",
        "--change",
        'CMD ["/usr/local/sbin/testbed-init"]',
        "--change",
        "STOPSIGNAL SIGTERM",
        str(tarball),
        IMAGE,
    )


def build_rootfs(tarball: Path) -> None:
    log(f"building the node image with debootstrap ({SUITE}, minbase); about 40-90 s")
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), MIRROR])
        chroot = ["chroot", str(rootfs)]
        run(chroot + ["useradd", "--create-home", "--shell", "/bin/bash", "--uid", str(UID), USER])
        # openssh-server's postinst bakes host keys into the image: every node
        # would share them. Drop them; testbed-init makes a node's own.
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (rootfs / "etc/ssh/sshd_config.d/testbed.conf").write_text(SSHD_CONF)
        (rootfs / "etc/ssh/authorized_keys.d").mkdir(mode=0o755)
        init = rootfs / "usr/local/sbin/testbed-init"
        init.write_text(INIT)
        init.chmod(0o755)
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        part = tarball.with_suffix(".part")
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(part), "."])
        part.rename(tarball)


def containers(name: str) -> list[str]:
    res = podman("ps", "-a", "--filter", f"label=gtsfm-testbed={name}", "--format", "{{.Names}}")
    return sorted(res.stdout.split(), key=lambda c: int(c.rsplit("node", 1)[1]))


def choose_subnet(name: str) -> ipaddress.IPv4Network:
    used = set()
    for net in json.loads(podman("network", "ls", "--format", "json").stdout or "[]"):
        for sub in net.get("subnets") or []:
            used.add(str(sub.get("subnet")))
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200
    for off in range(200):
        candidate = ipaddress.ip_network(f"10.213.{(start + off) % 200 + 20}.0/24")
        if str(candidate) not in used:
            return candidate
    raise SystemExit("testbed: no free 10.213.x.0/24 subnet left for a new network")


def ensure_network(name: str, state: dict) -> ipaddress.IPv4Network:
    net = f"gtsfm-{name}"
    if podman("network", "exists", net, check=False).returncode == 0:
        info = json.loads(podman("network", "inspect", net).stdout)[0]
        return ipaddress.ip_network(info["subnets"][0]["subnet"])
    subnet = choose_subnet(name)
    # No DNS on the network: nodes know each other by the names in
    # cluster.yaml through /etc/hosts, as lab machines do, not by container name.
    podman("network", "create", "--disable-dns", "--subnet", str(subnet), net)
    state["subnet"] = str(subnet)
    return subnet


def node_ip(subnet: ipaddress.IPv4Network, i: int) -> str:
    return str(subnet.network_address + 10 + i)


def up(args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= 64:
        raise SystemExit("testbed: --nodes must be between 1 and 64")
    name = args.name
    bed = BEDS_DIR / name
    bed.mkdir(parents=True, exist_ok=True)
    bed.chmod(0o700)
    state_file = bed / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state and state.get("shared_home") != args.shared_home:
        raise SystemExit(
            f"testbed: bed '{name}' exists with shared_home={state.get('shared_home')}; "
            f"run 'scripts/testbed down --name {name}' first"
        )
    ensure_tools()
    ensure_image()
    subnet = ensure_network(name, state)
    domain = f"{name}.gtsfm.test"
    nodes = [
        {
            "name": f"node{i}",
            "fqdn": f"node{i}.{domain}",
            "container": f"gtsfm-{name}-node{i}",
            "ip": node_ip(subnet, i),
        }
        for i in range(1, args.nodes + 1)
    ]
    wanted = {n["container"] for n in nodes}
    for extra in set(containers(name)) - wanted:
        log(f"removing {extra}")
        podman("rm", "-f", "-t", "2", extra)

    password = state.get("password") or secrets.token_urlsafe(18)
    key = bed / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"gtsfm-testbed-{name}-controller", "-f", str(key)])
    pubkey = (bed / "id_ed25519.pub").read_text()

    if args.shared_home:
        vol = f"gtsfm-{name}-home"
        if podman("volume", "exists", vol, check=False).returncode != 0:
            podman("volume", "create", "--label", f"gtsfm-testbed={name}", vol)
    home_sizes = dict(state.get("home_sizes") or {})
    for spec in args.home_size or []:
        node, size = spec.partition("=")[::2]
        if not re.fullmatch(r"node\d+", node) or not re.fullmatch(r"\d+[kmg]|none", size):
            raise SystemExit(f"testbed: --home-size takes NODE=SIZE (node4=150m) or NODE=none, got {spec!r}")
        if size == "none":
            home_sizes.pop(node, None)
        else:
            home_sizes[node] = size
    started = []
    for n in nodes:
        home_size = home_sizes.get(n["name"], "")
        found = podman(
            "inspect",
            "--format",
            '{{.ImageName}} {{.State.Running}} {{index .Config.Labels "gtsfm-home-size"}}',
            n["container"],
            check=False,
        )
        if found.returncode == 0:
            image, running, *size = found.stdout.split()
            if image == IMAGE and "".join(size).replace("<no value>", "") == home_size:
                if running != "true":
                    podman("start", n["container"])
                continue
            log(f"recreating {n['container']}: the node image or its home's size changed")
            podman("rm", "-f", "-t", "2", n["container"])
        # A fixed MAC as well as a fixed address: a node that is stopped and
        # started again comes back as the same machine, so its peers' ARP
        # caches stay right, as for a rebooted lab machine.
        mac = "02:00:" + ":".join(f"{int(octet):02x}" for octet in n["ip"].split("."))
        cmd = [
            "run",
            "-d",
            "--name",
            n["container"],
            "--hostname",
            n["fqdn"],
            "--label",
            f"gtsfm-testbed={name}",
            "--network",
            f"gtsfm-{name}",
            "--ip",
            n["ip"],
            "--mac-address",
            mac,
            *PODMAN_RUN_OPTS,
        ]
        if args.shared_home:
            cmd += ["-v", f"gtsfm-{name}-home:/home"]
        if home_size:
            # A home of its own size (a full disk on one node, for the fault tests): a tmpfs, emptied when the
            # node stops, seeded with the stock dotfiles below. podman takes no uid=/gid= tmpfs option (it
            # refuses the run), so the home is given to the user by the chown below.
            cmd += ["--label", f"gtsfm-home-size={home_size}", "--tmpfs", f"/home/{USER}:rw,size={home_size},mode=0755"]
        podman(*cmd, IMAGE)
        if home_size:
            podman(
                "exec",
                "-u",
                "0",
                n["container"],
                "sh",
                "-c",
                f"cp -a /etc/skel/. /home/{USER}/ && chown -R {UID}:{UID} /home/{USER}",
            )
        started.append(n)
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + "".join(
        f"{n['ip']}\t{n['fqdn']} {n['name']}\n" for n in nodes
    )
    for n in nodes:
        # Root inside the container sets up the machine itself, as an admin
        # would; nothing in the user's home is touched.
        script = (
            f"cat > /etc/hosts <<'EOF'\n{hosts}EOF\n"
            f"printf '%s' '{pubkey.strip()}' > /etc/ssh/authorized_keys.d/{USER}\n"
            f"chmod 644 /etc/ssh/authorized_keys.d/{USER}\n"
            f"echo '{USER}:{password}' | chpasswd\n"
        )
        podman("exec", "-u", "0", n["container"], "sh", "-c", script)
    for n in nodes:
        n["host_keys"] = read_host_keys(n["container"])
        n["veth"] = host_veth(n["container"])

    link_rate = state.get("link_rate") if args.link_rate is None else args.link_rate
    link_rate = None if link_rate in (None, "none") else link_rate
    for n in nodes:
        shape_link(n, link_rate)
    state["link_rate"] = link_rate
    state["home_sizes"] = home_sizes
    state["wheelhouse"] = str(ensure_wheelhouse())
    state.update(
        {
            "name": name,
            "nodes": nodes,
            "shared_home": args.shared_home,
            "password": password,
            "subnet": str(subnet),
            "image": IMAGE,
            "user": USER,
        }
    )
    write_bed(bed, state)
    wait_for_ssh(bed, nodes)
    log(f"{len(nodes)} node(s) up ({len(started)} new) on {subnet}")
    print(bed)


def read_host_keys(container: str) -> list[str]:
    deadline = time.monotonic() + 60
    while True:
        res = podman(
            "exec",
            container,
            "sh",
            "-c",
            "cat " + " ".join(f"/etc/ssh/ssh_host_{t}_key.pub" for t in HOST_KEY_TYPES),
            check=False,
        )
        keys = [" ".join(line.split()[:2]) for line in res.stdout.splitlines() if line.strip()]
        if res.returncode == 0 and len(keys) == len(HOST_KEY_TYPES):
            return keys
        if time.monotonic() > deadline:
            raise SystemExit(f"testbed: {container} made no host keys in 60 s: {res.stderr.strip()}")
        time.sleep(0.3)


def host_veth(container: str) -> str | None:
    """The host-side end of the node's link: tc on it shapes what the node receives."""
    res = podman("exec", container, "cat", "/sys/class/net/eth0/iflink", check=False)
    if res.returncode != 0:
        return None
    index = res.stdout.strip()
    for link in Path("/sys/class/net").iterdir():
        try:
            if (link / "ifindex").read_text().strip() == index:
                return link.name
        except OSError:
            continue
    return None


def shape_link(node: dict, rate: str | None) -> None:
    """Give a node a real link rate both ways, or take it away (rate None).

    tbf on the host-side veth shapes what the node receives; on the node's
    eth0, inside its network namespace, what it sends.
    """
    if rate is not None and not node.get("veth"):
        raise SystemExit(f"testbed: cannot find the host-side veth of {node['container']} to shape its link")
    for tc, dev in ((["tc"], node.get("veth")), (["podman", "exec", node["container"], "tc"], "eth0")):
        if dev is None:
            continue
        if rate is None:
            run(tc + ["qdisc", "del", "dev", dev, "root"], check=False)
            continue
        bits = parse_rate(rate)
        # Ten milliseconds of traffic per burst, at least 16 KiB: enough for
        # the kernel's timer granularity, small enough to keep the rate honest.
        burst = max(16384, bits // 8 // 100)
        run(
            tc
            + ["qdisc", "replace", "dev", dev, "root", "tbf", "rate", str(bits), "burst", str(burst), "latency", "50ms"]
        )


def parse_rate(rate: str) -> int:
    """'100mbit' -> 100_000_000 (bits per second); units kbit, mbit, gbit or none."""
    text = rate.strip().lower()
    for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3), ("bit", 1)):
        if text.endswith(unit):
            text, scale = text[: -len(unit)], factor
            break
    else:
        scale = 1
    try:
        value = float(text) * scale
    except ValueError:
        raise SystemExit(f"testbed: --link-rate takes a rate like 100mbit, 1gbit or 'none', not {rate!r}") from None
    if value < 8000:
        raise SystemExit(f"testbed: --link-rate {rate!r} is below 8kbit")
    return int(value)


def download_wheels(dest: Path, packages: list[str], *tags: str) -> Path:
    """The wheels of packages for the nodes' CPython 3.11 (tags: pip download's --platform, --abi, ... options),
    downloaded from PyPI once into dest; a partial download is never used. The heavy env check's wheels too."""
    if dest.is_dir():
        return dest
    log(f"downloading wheels ({', '.join(packages)}) from PyPI into {dest}")
    part = dest.with_suffix(".part")
    shutil.rmtree(part, ignore_errors=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            *tags,
            "-d",
            str(part),
            *packages,
        ]
    )
    part.rename(dest)
    return dest


def ensure_wheelhouse() -> Path:
    """The nodes' wheels (and uv's), downloaded from PyPI once into the cache."""
    platforms = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64", "any"]
    tags = ["--implementation", "cp", "--abi", "cp311", *[a for p in platforms for a in ("--platform", p)]]
    return download_wheels(WHEELHOUSE, WHEELHOUSE_PACKAGES, *tags)


def write_bed(bed: Path, state: dict) -> None:
    nodes = state["nodes"]
    (bed / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    (bed / "state.json").chmod(0o600)
    (bed / "password").write_text(state["password"] + "\n")
    (bed / "password").chmod(0o600)
    (bed / "cluster.yaml").write_text(
        "# GTSfM cluster config for test bed '{}' (first worker: scheduler and I/O node)\nworkers:\n".format(
            state["name"]
        )
        + "".join(f"  - {n['name']}\n" for n in nodes)
    )
    (bed / "known_hosts").write_text(
        "".join(f"{n['name']},{n['fqdn']},{n['ip']} {k}\n" for n in nodes for k in n["host_keys"])
    )
    (bed / "ssh_config").write_text(
        "".join(
            f"Host {n['name']} {n['fqdn']} {n['ip']}\n"
            f"  HostName {n['ip']}\n"
            f"  HostKeyAlias {n['name']}\n"
            f"  User {USER}\n"
            f"  IdentityFile {bed / 'id_ed25519'}\n"
            f"  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {bed / 'known_hosts'}\n"
            f"  StrictHostKeyChecking yes\n"
            f"  BatchMode yes\n"
            f"  ConnectTimeout 10\n\n"
            for n in nodes
        )
    )
    (bed / "inventory.yml").write_text(f"""\
# Test bed '{state["name"]}': GTSfM's cluster.yaml read by the collection's inventory plugin.
plugin: gtsfm.cluster.cluster_yaml
cluster_config: {bed / "cluster.yaml"}
ssh_user: {USER}
ssh_private_key_file: {bed / "id_ed25519"}
hostvars:
  ansible_python_interpreter: /usr/bin/python3
  # The names in cluster.yaml resolve only inside the bed; ssh_config maps
  # them to addresses and pins the nodes' host keys (known_hosts beside it).
  ansible_ssh_common_args: -F {bed / "ssh_config"}
  # Ansible names its control sockets after host, port and user, and every bed
  # calls its nodes node1..N: a directory per bed keeps one bed's connections
  # from ever serving another's play.
  ansible_control_path_dir: {bed / "cp"}
  # No internet here: GTSfM's weight origins are out of reach, so the model_weights role fetches nothing on a
  # bed unless a test gives its own manifest (model_weights_files, served on the bed's network).
  model_weights_sets: []
""")
    (bed / "vars.yml").write_text(f"""\
---
# Extra vars site.yml needs on test bed '{state["name"]}' (-e @vars.yml).
gtsfm_testbed_name: {state["name"]}
gtsfm_testbed_shared_home: {str(state["shared_home"]).lower()}
# conda_env/bashrc_init offline (no conda-forge, GitHub or PyPI from the nodes): the uv manager builds the env
# on the scheduler from the wheelhouse shipped from this controller, with the nodes' own /usr/bin/python3.
conda_env_manager: uv
conda_env_requirements: [dask, distributed, asyncssh]
conda_env_wheelhouse_src: {state.get("wheelhouse", WHEELHOUSE)}
conda_env_uv_src: {next(Path(state.get("wheelhouse", WHEELHOUSE)).glob("uv-*.whl"), "")}
conda_env_checkout_src: {CHECKOUT_STAND_IN}
conda_env_min_free_mb: 512
# gtsfm_run on a bed starts stand-ins of GTSfM's runner, which import Dask alone; the nodes have no Graphviz.
gtsfm_run_imports: [dask, distributed]
gtsfm_run_graphviz: ignore
""")


def wait_for_ssh(bed: Path, nodes: list[dict]) -> None:
    for n in nodes:
        deadline = time.monotonic() + 60
        while True:
            res = run(["ssh", "-F", str(bed / "ssh_config"), n["name"], "true"], check=False)
            if res.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"testbed: ssh to {n['name']} ({n['ip']}) failed for 60 s: {res.stderr.strip()}")
            time.sleep(0.5)


def down(args: argparse.Namespace) -> None:
    name = args.name
    names = containers(name) if shutil.which("podman") else []
    if names:
        podman("rm", "-f", "-t", "2", *names)
    if shutil.which("podman"):
        if podman("network", "exists", f"gtsfm-{name}", check=False).returncode == 0:
            podman("network", "rm", "-f", f"gtsfm-{name}")
        if podman("volume", "exists", f"gtsfm-{name}-home", check=False).returncode == 0:
            podman("volume", "rm", "-f", f"gtsfm-{name}-home")
    shutil.rmtree(BEDS_DIR / name, ignore_errors=True)
    log(f"bed '{name}' is down ({len(names)} node(s) removed)")


def status(args: argparse.Namespace) -> None:
    state_file = BEDS_DIR / args.name / "state.json"
    if not state_file.exists():
        raise SystemExit(f"testbed: no bed named '{args.name}'")
    state = json.loads(state_file.read_text())
    for n in state["nodes"]:
        print(f"{n['name']}\t{n['ip']}\t{n['container']}\t{n.get('veth') or '-'}\t{state.get('link_rate') or '-'}")
    print(BEDS_DIR / args.name)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="testbed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start (or reconcile) a bed of N nodes")
    p_up.add_argument("--nodes", type=int, default=3)
    p_up.add_argument("--shared-home", action="store_true", help="one /home volume on every node (NFS-style)")
    p_up.add_argument("--name", default="default")
    p_up.add_argument(
        "--link-rate",
        help="shape every node's link both ways, e.g. 100mbit ('none' removes it; "
        "default: keep the bed's current setting)",
    )
    p_up.add_argument(
        "--home-size",
        action="append",
        metavar="NODE=SIZE",
        help="give NODE a home of its own of SIZE (a tmpfs, e.g. node4=150m; emptied when the node "
        "stops), recreating it; NODE=none gives it back the image's home (default: keep the bed's)",
    )
    p_down = sub.add_parser("down", help="remove a bed")
    p_down.add_argument("--name", default="default")
    p_status = sub.add_parser("status", help="list a bed's nodes")
    p_status.add_argument("--name", default="default")
    args = parser.parse_args()
    if not args.name.replace("-", "").isalnum() or len(args.name) > 30:
        raise SystemExit("testbed: --name takes letters, digits and '-', at most 30 characters")
    {"up": up, "down": down, "status": status}[args.command](args)


if __name__ == "__main__":
    main()
