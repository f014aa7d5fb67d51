#!/bin/sh
# The escalation of escalation.json with the certsmith CLI: operations at 30 days left, management at 14,
# an emergency at 7. Replace the URLs, addresses and the pager command with yours. The pager rule needs a
# server started with command targets allowed (CERTSMITH_EVENT_COMMANDS=true).
set -eu
days() {
  printf '{"source":["aws.acm"],"detail-type":["ACM Certificate Approaching Expiration"],"detail":{"DaysToExpiry":[{"numeric":["=",%s]}]}}' "$1"
}
certsmith events rule add escalation-operations-30d --pattern "$(days 30)" \
  --webhook https://ops.example.com/hooks/certsmith --secret "${OPS_WEBHOOK_SECRET:?set OPS_WEBHOOK_SECRET}"
certsmith events rule add escalation-management-14d --pattern "$(days 14)" --email it-management@example.com
certsmith events rule add escalation-emergency-7d --pattern "$(days 7)" \
  --slack "${SLACK_WEBHOOK_URL:?set SLACK_WEBHOOK_URL}" --target-id incident-channel
certsmith events rule add escalation-emergency-7d --pattern "$(days 7)" \
  --command "/usr/local/bin/page-oncall --severity critical" --target-id pager
