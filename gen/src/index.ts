// Hand-written entry of @token-service/client: re-exports the generated
// messages and service descriptors (src/pb/** is written by `buf generate`).
// The vendored gRPC health and reflection protos (proto/grpc/**), which the
// service serves, come namespaced so their names stay apart from token.v1.
export * as grpcHealthV1 from "./pb/grpc/health/v1/health_pb.js";
export * as grpcReflectionV1 from "./pb/grpc/reflection/v1/reflection_pb.js";
export * as grpcReflectionV1alpha from "./pb/grpc/reflection/v1alpha/reflection_pb.js";
export * from "./pb/token/v1/errors_pb.js";
export * from "./pb/token/v1/mfa_service_pb.js";
export * from "./pb/token/v1/mfa_token_service_pb.js";
export * from "./pb/token/v1/token_service_pb.js";
