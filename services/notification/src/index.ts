export { createNotificationModule, migrateNotification, type NotificationModuleDeps } from "./module.js";
export { NOTIFICATION_SCHEMA } from "./database.js";
