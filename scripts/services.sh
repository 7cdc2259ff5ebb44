#!/bin/sh
# Start the services the integration tests use, with the machine's own commands,
# when the binary exists and nothing answers on the port yet.
port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

if command -v redis-server >/dev/null 2>&1 && ! port_open 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null \
    && echo "services: started redis"
fi
if [ -x /usr/sbin/nats-server ] && ! port_open 4222; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server && echo "services: started nats"
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && ! port_open 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start \
    && echo "services: started postgresql"
fi
exit 0
