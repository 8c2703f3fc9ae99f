import type { Kysely } from "kysely";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import { NotificationAdminService, NotificationService } from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { NOTIFICATION_SCHEMA, type NotificationDatabase } from "./database.js";
import { notificationMigrations } from "./migrations/index.js";
import { createNotificationAdminService } from "./notification-admin.service.js";
import { createNotificationService } from "./notification.service.js";

export interface NotificationModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
}

export function migrateNotification(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, NOTIFICATION_SCHEMA, notificationMigrations);
}

/** The notification service: events from the other services' outboxes, listed per account. */
export function createNotificationModule(deps: NotificationModuleDeps): ServiceModule {
  const db = forSchema<NotificationDatabase>(deps.root, NOTIFICATION_SCHEMA);
  const logger = deps.logger.child({ component: "notification" });
  return {
    name: "notification",
    publicServices: [bind(NotificationService, createNotificationService({ db }))],
    internalServices: [bind(NotificationAdminService, createNotificationAdminService({ db, clock: deps.clock, logger }))],
    anonymousMethods: [],
    async stop() {},
  };
}
