export type { Bundle } from './bundle.js';
export type { CompareInfo, CompareSpec, ComparedTensor } from './compare.js';
export { agreement, checkCompareSpec, compareSpecOf, iou, maxAbsDiff, parseCompareSpec } from './compare.js';
export { decodeBundle, encodeBundle } from './bundle.js';
export { canonicalBytes, canonicalize } from './canonical.js';
export { derToP1363, fromHex, fromPem, fromUtf8, p1363ToDer, toHex, toPem, utf8 } from './encoding.js';
export { readCapped, httpMetadataFetcher } from './fetch.js';
export { decodeGolden, encodeGolden } from './golden.js';
export { CHUNK_SIZE, chunkHashes, sha256Hex } from './hash.js';
export type { KeyAlgorithm, SigningKey } from './keys.js';
export {
  exportPrivateKey,
  generateKey,
  importSigningKey,
  keyId,
  signBytes,
  supportsEd25519,
  verifyBytes,
} from './keys.js';
export type {
  AbInfo,
  ChannelInfo,
  ShadowInfo,
  DelegatedRole,
  EncodedTensor,
  Envelope,
  GoldenFile,
  GoldenInfo,
  ReferenceInfo,
  MetaFile,
  ModelFileInfo,
  PublicKey,
  RoleKeys,
  RoleName,
  Root,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
  TopRole,
} from './metadata.js';
export { DEFAULT_EXPIRY, SPEC_VERSION, expiryAt } from './metadata.js';
export type { SignedOf } from './parse.js';
export { parseMetadata } from './parse.js';
export {
  CHANNEL_PATHS,
  assertSafeName,
  channelPath,
  comparePath,
  goldenPath,
  isSafeName,
  matchesPattern,
  metadataFile,
  modelFilePath,
  referencePath,
  rolloutPlanPath,
  targetUrlPath,
} from './paths.js';
export type { RolloutPlan, RolloutPlanInfo } from './rollout.js';
export { ROLLOUT_PLAN_DEFAULTS, checkRolloutPlan, rolloutPlanOf } from './rollout.js';
export type { ChannelDecision, Release, ReleaseBlob, ReleaseFile, ReleaseVariant } from './release.js';
export { abBucket, decideChannel, modelVersions, releaseOf, rolloutBucket } from './release.js';
export type {
  Expiry,
  InitOptions,
  MetadataFiles,
  PublishFile,
  PublishedBlob,
  RepoState,
  Signers,
} from './repository.js';
export {
  addRelease,
  describeModelFile,
  encodeEnvelope,
  initRepository,
  refreshTimestamp,
  rotateRoot,
  setChannel,
} from './repository.js';
export { countValidSignatures, meetsThreshold, signMetadata } from './sign.js';
export {
  ALLOWED_ATTRIBUTES,
  ATTR,
  AUTH_HEADER,
  DEVICE_CLASS,
  DRIFT_PSI_THRESHOLD,
  EVENT,
  IDEMPOTENCY_HEADER,
  LOAD_DURATION_BOUNDS,
  METRIC,
  OTLP_PATHS,
  RESOURCE,
  RUN_DURATION_BOUNDS,
  SERVICE_NAME,
  SHADOW_AGREEMENT_BOUNDS,
  SHADOW_METRIC_PREFIX,
  SHADOW_RATIO_BOUNDS,
  bucketDown,
  decodeReference,
} from './telemetry.js';
export type { DriftReference } from './telemetry.js';
export type { MetadataFetcher, RefreshResult, TrustedState } from './trust.js';
export { MAX_ROOT_ROTATIONS, METADATA_CAPS, TrustedSet, refreshMetadata } from './trust.js';
