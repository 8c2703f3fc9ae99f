export { createOutboxTable, addOutboxTraceContext, type OutboxTable } from "./table.js";
export { recordEvents, type OutboxEvent } from "./record.js";
export { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions, type StoredEvent } from "./relay.js";
export { deliverToNotificationService } from "./to-notification.js";
