export * from "./gen/cls/pool/v1/pool_pb.js";
export * from "./gen/cls/allocation/v1/allocation_pb.js";
export * from "./gen/cls/allocation/v1/lease_pb.js";
export * from "./gen/cls/server_identity/v1/server_identity_pb.js";
export * from "./gen/cls/notification/v1/notification_pb.js";
export * from "./gen/grpc/health/v1/health_pb.js";
