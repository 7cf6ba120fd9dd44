import { constants, createPublicKey, type KeyObject, verify } from "node:crypto";
import { calculateJwkThumbprint } from "jose";
import { jwsAlgorithmNames } from "./jose-algorithms.js";
import { MIN_RSA_MODULUS_BITS, publicKeyProblem } from "./key-policy.js";

/**
 * Verifies a compact JWS against the public JWK in its own protected header
 * (RFC 9449 §4.3 checks 4–7 for DPoP proofs), on node:crypto.
 *
 * jose's `jwtVerify(proof, EmbeddedJWK)` does the same job and was used
 * here first; it is replaced by hand because jose v6 runs on WebCrypto,
 * which imports the JWK and verifies asynchronously on every call: in the
 * bench's DPoP row that was about 40 % of the request's CPU time. A client
 * signs every proof with the same key, so this module imports each distinct
 * protected header once and keeps the key object and its RFC 7638 thumbprint
 * (computed with jose) in a small LRU cache. Everything jose checked is
 * checked here too: the algorithm allow-list, the key type and curve that
 * fit the algorithm, a public key only,
 * no `crit` extensions (RFC 7515 §4.1.11: unknown ones MUST be refused),
 * a JSON-object payload, and `exp`/`nbf` when present (RFC 7519 §4.1.4–5).
 * Before any of that work, the jwk must pass the key policy (key-policy.ts:
 * RSA 2,048–4,096 bits with e = 65537, EC on the alg's curve, Ed25519), so a
 * proof's cost is bounded whatever key it carries (SPEC §4).
 */

/** How one JWS `alg` is verified with node:crypto. */
interface AlgorithmSpec {
  /** The digest for `crypto.verify`; null for EdDSA, which hashes itself. */
  digest: string | null;
  /** `KeyObject.asymmetricKeyType` the algorithm needs. */
  keyType: "ec" | "ed25519" | "rsa";
  /** `asymmetricKeyDetails.namedCurve` for ECDSA (RFC 7518 §3.4). */
  curve?: string;
  /** ECDSA signatures are R‖S in JWS (RFC 7518 §3.4), not DER. */
  dsaEncoding?: "ieee-p1363";
  /** RSA padding: PKCS#1 v1.5 (RS256) or PSS with a digest-sized salt (PS256, RFC 7518 §3.5). */
  padding?: number;
  saltLength?: number;
}

const ALGORITHMS: Record<string, AlgorithmSpec> = {
  ES256: { digest: "sha256", keyType: "ec", curve: "prime256v1", dsaEncoding: "ieee-p1363" },
  ES384: { digest: "sha384", keyType: "ec", curve: "secp384r1", dsaEncoding: "ieee-p1363" },
  EdDSA: { digest: null, keyType: "ed25519" },
  // RFC 9864's fully-specified name for EdDSA on Ed25519 (the only curve accepted).
  Ed25519: { digest: null, keyType: "ed25519" },
  RS256: { digest: "sha256", keyType: "rsa", padding: constants.RSA_PKCS1_PADDING },
  PS256: {
    digest: "sha256",
    keyType: "rsa",
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
  },
};

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Why a JWS was refused; the caller turns it into its own error. `key`: the
 * jwk is outside the key policy (key-policy.ts), refused before any import.
 */
export type JwsFailure = "header" | "typ" | "alg" | "jwk" | "public" | "key" | "signature";

export interface VerifiedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** RFC 7638 SHA-256 thumbprint of the header's jwk. */
  jkt: string;
}

export interface EmbeddedJwkJwsOptions {
  /** The only accepted `typ` (compared exactly). */
  typ: string;
  /** Accepted `alg` values; each must be one of ALGORITHMS. */
  algorithms: readonly string[];
  /** Distinct protected headers (≈ client keys) kept imported. */
  cacheSize?: number;
}

interface ImportedHeader {
  header: Record<string, unknown>;
  spec: AlgorithmSpec;
  key: KeyObject;
  jkt: string;
}

export interface EmbeddedJwkJwsVerifier {
  /**
   * The verified header, payload and key thumbprint, or the first failed
   * rule. `jws` must already match the compact-serialisation shape
   * (three base64url segments).
   */
  verify(jws: string, nowMs: number): Promise<VerifiedJws | JwsFailure>;
}

export function createEmbeddedJwkJwsVerifier(
  options: EmbeddedJwkJwsOptions,
): EmbeddedJwkJwsVerifier {
  for (const alg of options.algorithms) {
    if (ALGORITHMS[alg] === undefined) throw new Error(`unsupported JWS algorithm ${alg}`);
  }
  const cacheSize = options.cacheSize ?? 1024;
  // A Map iterates in insertion order: re-inserting on a hit makes it an LRU.
  const cache = new Map<string, ImportedHeader>();

  const importHeader = async (segment: string): Promise<ImportedHeader | JwsFailure> => {
    const header = parseJsonObject(segment);
    if (header === undefined) return "header";
    if (header.typ !== options.typ) return "typ";
    const alg = header.alg;
    if (typeof alg !== "string" || !options.algorithms.includes(alg)) return "alg";
    const spec = ALGORITHMS[alg] as AlgorithmSpec;
    if (header.crit !== undefined) return "header";
    const jwk = header.jwk;
    if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) return "jwk";
    const members = jwk as Record<string, unknown>;
    if (PRIVATE_MEMBERS.some((member) => member in members)) return "public";
    // A jwk that names its own use, operations or algorithm must name this one.
    if (members.use !== undefined && members.use !== "sig") return "signature";
    if (members.alg !== undefined && !jwsAlgorithmNames(alg).includes(members.alg as string)) {
      return "signature";
    }
    if (
      members.key_ops !== undefined &&
      !(Array.isArray(members.key_ops) && members.key_ops.includes("verify"))
    ) {
      return "signature";
    }
    // Bounded cost first (SPEC §4): nothing is imported, hashed or verified
    // with a key outside the policy.
    if (publicKeyProblem(members, alg) !== undefined) return "key";
    let key: KeyObject;
    let jkt: string;
    try {
      key = createPublicKey({ key: members as never, format: "jwk" });
      jkt = await calculateJwkThumbprint(members as never, "sha256");
    } catch {
      return "signature";
    }
    if (!keyFits(key, spec)) return "signature";
    return { header, spec, key, jkt };
  };

  return {
    async verify(jws, nowMs) {
      const firstDot = jws.indexOf(".");
      const secondDot = jws.indexOf(".", firstDot + 1);
      const headerSegment = jws.slice(0, firstDot);
      let imported = cache.get(headerSegment);
      if (imported === undefined) {
        const result = await importHeader(headerSegment);
        if (typeof result === "string") return result;
        imported = result;
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      } else {
        cache.delete(headerSegment);
      }
      cache.set(headerSegment, imported);

      const { spec, key } = imported;
      const signature = Buffer.from(jws.slice(secondDot + 1), "base64url");
      let valid: boolean;
      try {
        valid = verify(
          spec.digest,
          Buffer.from(jws.slice(0, secondDot), "ascii"),
          {
            key,
            dsaEncoding: spec.dsaEncoding,
            padding: spec.padding,
            saltLength: spec.saltLength,
          },
          signature,
        );
      } catch {
        valid = false;
      }
      if (!valid) return "signature";

      const payload = parseJsonObject(jws.slice(firstDot + 1, secondDot));
      if (payload === undefined) return "signature";
      // RFC 7519 §4.1.4–5, as jose's jwtVerify applied them (no leeway).
      const now = Math.floor(nowMs / 1000);
      if (payload.exp !== undefined && !(typeof payload.exp === "number" && payload.exp > now)) {
        return "signature";
      }
      if (payload.nbf !== undefined && !(typeof payload.nbf === "number" && payload.nbf <= now)) {
        return "signature";
      }
      return { header: imported.header, payload, jkt: imported.jkt };
    },
  };
}

function keyFits(key: KeyObject, spec: AlgorithmSpec): boolean {
  if (key.type !== "public" || key.asymmetricKeyType !== spec.keyType) return false;
  const details = key.asymmetricKeyDetails;
  if (spec.curve !== undefined) return details?.namedCurve === spec.curve;
  if (spec.keyType === "rsa") return (details?.modulusLength ?? 0) >= MIN_RSA_MODULUS_BITS;
  return true;
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: refused below.
  }
  return undefined;
}
