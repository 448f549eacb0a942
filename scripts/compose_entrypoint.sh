#!/bin/sh
# Entry point of every app container of docker-compose.yml. In the simulators profile (compose.simulators.env
# sets SIM_WEBHOOK_KEY_FILE) the SendGrid simulator signs its event webhooks with a key pair it creates in the
# shared volume: wait for it and verify with its public half. Otherwise run the command as it is.
set -eu
if [ -n "${SIM_WEBHOOK_KEY_FILE:-}" ]; then
  derive="from simulators.sendgrid.signing import load_private_key, public_key_b64; \
print(public_key_b64(load_private_key('$SIM_WEBHOOK_KEY_FILE')))"
  tries=0
  until SENDGRID_WEBHOOK_PUBLIC_KEY=$(python -c "$derive" 2>/dev/null); do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
      echo "no simulator webhook key at $SIM_WEBHOOK_KEY_FILE after 120 s (is sendgrid-simulator running?)" >&2
      exit 1
    fi
    sleep 1
  done
  export SENDGRID_WEBHOOK_PUBLIC_KEY
fi
exec "$@"
