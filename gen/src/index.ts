// Hand-written entry of @token-service/client: re-exports the generated
// messages and service descriptors (src/pb/** is written by `buf generate`).
export * from "./pb/token/v1/errors_pb.js";
export * from "./pb/token/v1/mfa_service_pb.js";
export * from "./pb/token/v1/mfa_token_service_pb.js";
export * from "./pb/token/v1/token_service_pb.js";
