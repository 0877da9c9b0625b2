# A lab host whose PID 1 is systemd, as on most real machines: sshd runs as
# ssh.service and PostgreSQL, once installed, as postgresql@V-main. The
# entrypoint does a host's start-up work (host keys, the lab's key, the apt
# proxy) and then execs /sbin/init. Timers and services that only make noise
# in a container, or take apt's lock in the middle of a test, are masked, and
# so is tmp.mount (trixie's /tmp on tmpfs), which a container without
# CAP_SYS_ADMIN cannot mount: /tmp stays on the container's disk.
# `docker run` needs the options of hosts.go (systemdRunArgs).
ARG BASE
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-sysv; \
    rm -rf /var/lib/apt/lists/*; \
    systemctl enable ssh.service; \
    systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service \
        fstrim.timer systemd-timesyncd.service getty.target console-getty.service systemd-udevd.service \
        systemd-udev-trigger.service systemd-firstboot.service tmp.mount
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
