import type { Metrics } from "./metrics.js";
import type { SecurityEvents } from "./security-events.js";

/** Security events that are also counted (`token_service_security_events_total`, lockouts apart). */
export function countSecurityEvents(events: SecurityEvents, metrics: Metrics): SecurityEvents {
  return {
    record(event, fields) {
      metrics.recordSecurityEvent(event);
      events.record(event, fields);
    },
  };
}
