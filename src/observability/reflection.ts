import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import type { grpcReflectionV1, grpcReflectionV1alpha } from "@token-service/client";

/**
 * What one request asks, in the shape both protocol versions share
 * (grpc.reflection.v1alpha is v1 under another package name, field for field).
 */
interface Request {
  messageRequest:
    | {
        case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType";
        value: string;
      }
    | { case: "listServices"; value: string }
    | {
        case: "fileContainingExtension";
        value: { containingType: string; extensionNumber: number };
      }
    | { case: undefined; value?: undefined };
}
/** The answer, assignable to the v1 and the v1alpha response alike. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    };

export interface ReflectionServiceImpls {
  v1: ServiceImpl<typeof grpcReflectionV1.ServerReflection>;
  /**
   * The same answers under grpc.reflection.v1alpha, which many clients still
   * ask first or only (grpc-go's and grpc-js's reflection clients, grpcurl
   * before 1.9): SPEC §2 serves both.
   */
  v1alpha: ServiceImpl<typeof grpcReflectionV1alpha.ServerReflection>;
}

/**
 * grpc.reflection.v1.ServerReflection (and v1alpha) over the descriptors
 * protobuf-es embeds in the generated code (no npm package does this for
 * connect-node). `files` are the files whose services the server serves;
 * their imports are found through `DescFile.dependencies`. As in grpc-go, a
 * file descriptor response holds the requested file followed by those of its
 * transitive dependencies not yet sent on this stream.
 */
export function createReflectionServiceImpls(files: DescFile[]): ReflectionServiceImpls {
  const byName = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  const messageNames = new Set<string>();
  const extensionNumbers = new Map<string, Map<number, DescFile>>();
  const addFile = (file: DescFile): void => {
    if (byName.has(file.proto.name)) return;
    byName.set(file.proto.name, file);
    for (const type of nestedTypes(file)) {
      bySymbol.set(type.typeName, file);
      if (type.kind === "message") {
        messageNames.add(type.typeName);
      } else if (type.kind === "service") {
        for (const method of type.methods) bySymbol.set(`${type.typeName}.${method.name}`, file);
      } else if (type.kind === "extension") {
        const numbers = extensionNumbers.get(type.extendee.typeName) ?? new Map();
        numbers.set(type.number, file);
        extensionNumbers.set(type.extendee.typeName, numbers);
      }
    }
    for (const dependency of file.dependencies) addFile(dependency);
  };
  for (const file of files) addFile(file);
  const services = files.flatMap((file) => file.services.map((s) => ({ name: s.typeName })));

  function answer(request: Request, sent: Set<string>): Answer {
    const notFound = (what: string): Answer => ({
      case: "errorResponse",
      value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
    });
    const withDependencies = (file: DescFile | undefined, what: string): Answer => {
      if (file === undefined) return notFound(what);
      const out: Uint8Array[] = [];
      const visit = (f: DescFile, requested: boolean): void => {
        if (!requested && sent.has(f.proto.name)) return;
        sent.add(f.proto.name);
        out.push(toBinary(FileDescriptorProtoSchema, f.proto));
        for (const dependency of f.dependencies) visit(dependency, false);
      };
      visit(file, true);
      return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
    };

    const { messageRequest: req } = request;
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services } };
      case "fileByFilename":
        return withDependencies(byName.get(req.value), `file ${req.value}`);
      case "fileContainingSymbol":
        return withDependencies(bySymbol.get(req.value), `symbol ${req.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        return withDependencies(
          extensionNumbers.get(containingType)?.get(extensionNumber),
          `extension ${containingType}:${extensionNumber}`,
        );
      }
      case "allExtensionNumbersOfType": {
        if (!messageNames.has(req.value)) return notFound(`message type ${req.value}`);
        const numbers = [...(extensionNumbers.get(req.value)?.keys() ?? [])];
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: req.value, extensionNumber: numbers },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "empty message_request" },
        };
    }
  }

  return {
    v1: {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const request of requests) {
          yield {
            validHost: request.host,
            originalRequest: request,
            messageResponse: answer(request, sent),
          };
        }
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const request of requests) {
          yield {
            validHost: request.host,
            originalRequest: request,
            messageResponse: answer(request, sent),
          };
        }
      },
    },
  };
}
