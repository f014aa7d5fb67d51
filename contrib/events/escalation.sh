#!/bin/sh
# The escalation of escalation.json with the certsmith CLI: operations at 30 days left, management at 14, an
# emergency at 7 (Slack and the pager), each only for a certificate whose renewal is in trouble or that certsmith
# does not renew (ManagedRenewal NEEDS_ACTION, OVERDUE or NOT_RENEWED): a renewal planned or under way pages nobody.
#
# Replace the URLs, addresses and the pager command with yours, and set OPS_WEBHOOK_SECRET (16+ characters) and
# SLACK_WEBHOOK_URL. The server must be started with:
#   - smtp_url (CERTSMITH_SMTP_URL=smtp://HOST:PORT, or smtp_url in its configuration file) for the email rule;
#   - event_commands (CERTSMITH_EVENT_COMMANDS=true) for the pager, a command target.
# Without them that rule or target is refused; every other one is still created. The CLI finds the server through
# CERTSMITH_ENDPOINT, AWS_SHARED_CREDENTIALS_FILE and CERTSMITH_CA_BUNDLE; CERTSMITH names another certsmith program.
#
# Exit status: 0 when every rule and target was created, 1 when any failed (each is listed at the end, with why).
set -u

certsmith=${CERTSMITH:-certsmith}
failures=""

pattern() {
  printf '{"source":["aws.acm"],"detail-type":["ACM Certificate Approaching Expiration"],"detail":{"DaysToExpiry":[{"numeric":["=",%s]}],"ManagedRenewal":[{"anything-but":["ON_TRACK","IN_PROGRESS"]}]}}' "$1"
}

failed() {  # failed WHAT WHY
  failures="${failures}  $1: $2
"
  echo "FAILED: $1: $2" >&2
}

add() {  # add WHAT DAYS RULE-NAME TARGET-OPTION... : one rule with one target (a second call adds a target)
  what=$1 days=$2 name=$3
  shift 3
  # certsmith's error message is kept to say why; what it prints on success goes to stdout as usual.
  { why=$("$certsmith" events rule add "$name" --pattern "$(pattern "$days")" "$@" 2>&1 1>&3 3>&-); status=$?; } 3>&1
  if [ "$status" -eq 0 ]; then
    echo "created: $what"
  else
    failed "$what" "$(printf '%s' "${why:-certsmith exited with status $status}" | tr '\n' ' ')"
  fi
}

if [ -n "${OPS_WEBHOOK_SECRET:-}" ]; then
  add "30 days, operations webhook (escalation-operations-30d)" 30 escalation-operations-30d \
    --webhook https://ops.example.com/hooks/certsmith --secret "$OPS_WEBHOOK_SECRET" --target-id operations
else
  failed "30 days, operations webhook (escalation-operations-30d)" "OPS_WEBHOOK_SECRET is not set"
fi

add "14 days, management email (escalation-management-14d; needs smtp_url)" 14 escalation-management-14d \
  --email it-management@example.com --target-id management

if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  add "7 days, incident channel on Slack (escalation-emergency-7d)" 7 escalation-emergency-7d \
    --slack "$SLACK_WEBHOOK_URL" --target-id incident-channel
else
  failed "7 days, incident channel on Slack (escalation-emergency-7d)" "SLACK_WEBHOOK_URL is not set"
fi

add "7 days, pager command (escalation-emergency-7d; needs event_commands)" 7 escalation-emergency-7d \
  --command "/usr/local/bin/page-oncall --severity critical" --target-id pager

if [ -n "$failures" ]; then
  printf 'Not created:\n%s' "$failures" >&2
  exit 1
fi
echo "every escalation rule and target was created"
