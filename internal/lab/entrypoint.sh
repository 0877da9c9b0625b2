#!/bin/sh
# Start of a lab host: make its own SSH host keys on the first start (two
# hosts never share one, and a recreated host gets new ones, as on real
# machines), authorise the lab's key for "ops", point apt at the lab's package
# cache, then run sshd as PID 1 — or, given a command (/sbin/init on the
# systemd hosts), exec that: systemd then starts sshd as a unit. The work is
# done here, before systemd, so that no unit needs the container's
# environment, and again at each start of the container, as after a reboot.
set -eu
if [ ! -e /etc/ssh/ssh_host_ed25519_key ]; then
    ssh-keygen -A >/dev/null
fi
if [ -n "${LAB_AUTHORIZED_KEY:-}" ]; then
    install -d -m 0700 -o ops -g ops /home/ops/.ssh
    printf '%s\n' "$LAB_AUTHORIZED_KEY" > /home/ops/.ssh/authorized_keys
    chown ops:ops /home/ops/.ssh/authorized_keys
    chmod 0600 /home/ops/.ssh/authorized_keys
fi
if [ -n "${LAB_APT_PROXY:-}" ]; then
    printf 'Acquire::http::Proxy "%s";\n' "$LAB_APT_PROXY" > /etc/apt/apt.conf.d/01pgfleet-lab-proxy
fi
if [ $# -gt 0 ]; then
    exec "$@"
fi
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
