# The control plane: every message between clients, the coordinator and workers is one
# Envelope, sent as a length-framed Cap'n Proto message over TCP (net/control/frame.h).
# Bulk tensors never travel here: K/V blocks go over the data plane (net/data/transport.h).
#
# The Envelope names the direction of its message: the handshake (Hello to the coordinator,
# HelloAck back), then ToCoordinator (from a worker or a client), ToWorker or ToClient (from
# the coordinator). Each end decodes only the direction it receives and refuses anything else,
# naming the message. Hello and HelloAck keep their place and layout in every version, so that
# peers of different versions can still tell each other which they speak.
#
# Compatibility: fields may be added at the end of a struct and kinds at the end of a union;
# anything else is a new protocolVersion. A peer that speaks another version is refused at
# connect (Hello/HelloAck).
@0xb5e1c4f0a8d2e637;

$import "/capnp/c++.capnp".namespace("runahead::schema");

const protocolVersion :UInt32 = 4;
# 2: top log-probabilities, ignoreEos.
# 3: one union per direction; the partition scheme an enum; the calibration messages
#    removed.
# 4: admission: WorkerInfo.maxPositions and vocabSize, SubmitRequest.timeoutMillis;
#    AssignSlice.kvCapability, the request's data-plane capability; Heartbeat from the
#    coordinator to workers and clients (liveness both ways); authentication at Hello:
#    Hello.nonce, HelloChallenge and HelloProof (mutual challenge-response with HMAC-SHA-256
#    under the key of the peer's role).

enum Role {
  worker @0;
  client @1;
}

enum ErrorCode {
  # Mirrors runahead::ErrorCode (core/status.h).
  invalidArgument @0;
  notFound @1;
  outOfRange @2;
  corruptData @3;
  unsupported @4;
  resourceExhausted @5;
  unavailable @6;
  timeout @7;
  cancelled @8;
  protocol @9;
  internal @10;
  device @11;
}

# --- Joining -----------------------------------------------------------------------------

struct WorkerInfo {
  # What a worker says of itself when it joins. Part of Hello: its layout stays as it is.
  unusedListenAddress @0 :Text;  # never set since version 3; kept for Hello's layout
  dataPlaneAddress @1 :Data;     # opaque Transport::local_address() bytes
  backend @2 :Text;              # "cpu", "cuda:0", ...
  freeMemoryBytes @3 :UInt64;
  modelHash @4 :Text;            # hash of weights and config; must match the coordinator's
  perTokenSeconds @5 :Float64;   # cost model a of a slice, t = a n + b n (s + n/2), measured
  perKeySeconds @6 :Float64;     # cost model b; both 0 when not measured
  slidingWindow @7 :UInt32;      # the model's attention window in positions (0: none)
  maxPositions @8 :UInt32;       # the model's context in positions (0: not said)
  vocabSize @9 :UInt32;          # token ids are below it (0: not said)
}

struct Hello {
  protocolVersion @0 :UInt32;
  role @1 :Role;
  name @2 :Text;                 # a human-readable name for logs
  worker @3 :WorkerInfo;         # set when role is worker
  nonce @4 :Data;                # the peer's fresh random challenge when it holds a key for its
                                 # role; empty: it has none (a coordinator with keys refuses it)
}

struct HelloChallenge {
  # The coordinator's answer to a Hello with a nonce, when it holds the key of the peer's role:
  # it proves the key first, then waits for the peer's HelloProof (net/control/handshake_proof.h).
  nonce @0 :Data;                # the coordinator's fresh random challenge
  proof @1 :Data;                # HMAC-SHA-256 by the coordinator over both nonces, role, name
}

struct HelloProof {
  # The peer's answer to HelloChallenge; HelloAck follows.
  proof @0 :Data;                # HMAC-SHA-256 by the peer over both nonces, role, name
}

struct HelloAck {
  protocolVersion @0 :UInt32;
  accepted @1 :Bool;
  reason @2 :Text;               # why the peer was refused
  peerId @3 :UInt64;             # the id the coordinator gave the joining peer
}

struct Heartbeat {
  sequence @0 :UInt64;
  activeRequests @1 :UInt32;
  freeMemoryBytes @2 :UInt64;
}

# --- Requests (client -> coordinator) ----------------------------------------------------

struct SamplingOptions {
  # Mirrors runahead::SamplingOptions (core/sampling_options.h).
  temperature @0 :Float32;       # 0: greedy
  topK @1 :UInt32;               # 0: no limit
  topP @2 :Float32;              # 1: no limit
  seed @3 :UInt64;
  repetitionPenalty @4 :Float32 = 1.0;  # 1: off
}

struct SubmitRequest {
  requestId @0 :UInt64;          # chosen by the client, unique on its connection
  promptTokens @1 :List(Int32);
  maxNewTokens @2 :UInt32;
  sampling @3 :SamplingOptions;
  returnLogits @4 :Bool;         # send the logits of every generated position back
  partition @5 :PartitionChoice;
  topLogprobs @6 :UInt32;        # K > 0: each Token carries the top K log-probabilities
  ignoreEos @7 :Bool;            # decode past EOS, up to maxNewTokens
  timeoutMillis @8 :UInt64;      # deadline from the coordinator's receipt (clocks differ
                                 # between hosts); 0: the coordinator's request timeout
}

enum PartitionScheme {
  # Mirrors runahead::PartitionScheme (core/partition_scheme.h); unset: the coordinator's own.
  unset @0;
  balanced @1;
  even @2;
  explicit @3;
  searched @4;
}

struct PartitionChoice {
  # How the coordinator cuts this request's prompt; all unset: the coordinator's default.
  scheme @0 :PartitionScheme;
  workers @1 :UInt32;            # workers to use (0: the coordinator decides)
  cuts @2 :List(UInt64);         # explicit: 0 = c0 < c1 < ... < cP = prompt length
}

struct Cancel {
  requestId @0 :UInt64;
  reason @1 :Text;
}

# --- Slices (coordinator -> workers) ------------------------------------------------------

struct ChainMember {
  workerId @0 :UInt64;
  dataPlaneAddress @1 :Data;
}

struct AssignSlice {
  requestId @0 :UInt64;
  chain @1 :List(ChainMember);   # every worker of the request, in prefix order
  index @2 :UInt32;              # this worker's position in chain
  sliceBegin @3 :UInt64;         # this worker's tokens are [sliceBegin, sliceEnd)
  sliceEnd @4 :UInt64;
  tokens @5 :List(Int32);        # the prompt tokens of this slice
  totalPromptTokens @6 :UInt64;
  maxNewTokens @7 :UInt32;
  sampling @8 :SamplingOptions;
  returnLogits @9 :Bool;
  historyTokens @10 :List(Int32);  # the last worker only: prompt tokens [0, sliceBegin)
  topLogprobs @11 :UInt32;       # as in SubmitRequest
  ignoreEos @12 :Bool;
  kvCapability @13 :Data;        # 16 random bytes drawn for this request and given to its chain
                                 # only: every K/V block of the request carries them, and a
                                 # worker takes no block without them
}

struct SliceReady {
  # The worker holds the request's cache and may receive its predecessor's K/V.
  requestId @0 :UInt64;
  workerId @1 :UInt64;
  index @2 :UInt32;
  kvTarget @3 :Data;             # opaque: where a predecessor on this host may write this
                                 # worker's K/V directly (GPU peer copy); empty: none
  directToAll @4 :Bool;          # it can write directly to every other worker of the chain
}

struct StartSlice {
  # Every worker of the chain is ready: K/V may flow to the successor.
  requestId @0 :UInt64;
  successorKvTarget @1 :Data;    # the successor's SliceReady.kvTarget
  fanOut @2 :Bool;               # every pair of the chain is direct: each worker writes its own
                                 # K/V straight to every later one, nothing is forwarded
  laterKvTargets @3 :List(Data); # with fanOut: the kvTarget of every later worker, in order
}

struct LayerTiming {
  # Mirrors runahead::LayerTiming (core/layer_timing.h).
  workerId @0 :UInt64;
  layer @1 :UInt32;
  computeNanos @2 :UInt64;
  waitNanos @3 :UInt64;          # waiting for the predecessor's prefix of this layer
  bytesIn @4 :UInt64;
  bytesOut @5 :UInt64;
}

struct SliceDone {
  requestId @0 :UInt64;
  workerId @1 :UInt64;
  index @2 :UInt32;
  timeline @3 :List(LayerTiming);
}

# --- Results (last worker -> coordinator -> client) ---------------------------------------

struct Token {
  requestId @0 :UInt64;
  token @1 :Int32;
  index @2 :UInt32;              # 0 is the first token
  isLast @3 :Bool;
  logits @4 :List(Float32);      # when returnLogits was asked for
  # With topLogprobs K > 0 (computed on the worker; K pairs, not the vocabulary): the token's
  # log-probability and the K likeliest ids with theirs, likeliest first.
  logprob @5 :Float32;
  topTokens @6 :List(Int32);
  topLogprobs @7 :List(Float32);
}

struct RequestResult {
  requestId @0 :UInt64;
  tokens @1 :List(Int32);
  ttftNanos @2 :UInt64;          # measured at the coordinator
  totalNanos @3 :UInt64;
  timeline @4 :List(LayerTiming);
  cuts @5 :List(UInt64);         # the partition the request ran with
}

struct RequestError {
  requestId @0 :UInt64;
  code @1 :ErrorCode;
  message @2 :Text;              # names the worker or input at fault
}

# --- Status -------------------------------------------------------------------------------

struct StatusQuery {
}

struct WorkerRecord {
  # A registered worker, as a status query reports it.
  workerId @0 :UInt64;
  name @1 :Text;
  info @2 :WorkerInfo;
  healthy @3 :Bool;
  lastHeartbeatAgeMillis @4 :UInt64;
  activeRequests @5 :UInt32;
}

struct StatusReply {
  workers @0 :List(WorkerRecord);
  queuedRequests @1 :UInt32;
  activeRequests @2 :UInt32;
  queueCapacity @3 :UInt32;
}

# --- The envelope -------------------------------------------------------------------------

struct ToCoordinator {
  # From a worker or a client, after its Hello; the coordinator takes each from the role the
  # Hello gave.
  union {
    heartbeat @0 :Heartbeat;
    submitRequest @1 :SubmitRequest;   # client
    cancel @2 :Cancel;                 # client
    statusQuery @3 :StatusQuery;       # client
    sliceReady @4 :SliceReady;         # worker
    sliceDone @5 :SliceDone;           # worker
    token @6 :Token;                   # worker, the last of the request's chain
    requestError @7 :RequestError;     # worker
  }
}

struct ToWorker {
  # From the coordinator, after the HelloAck.
  union {
    assignSlice @0 :AssignSlice;
    startSlice @1 :StartSlice;
    cancel @2 :Cancel;
    heartbeat @3 :Heartbeat;           # the coordinator is alive; sent every heartbeat period
  }
}

struct ToClient {
  # From the coordinator, after the HelloAck.
  union {
    token @0 :Token;
    requestResult @1 :RequestResult;
    requestError @2 :RequestError;
    statusReply @3 :StatusReply;
    heartbeat @4 :Heartbeat;           # the coordinator is alive; sent every heartbeat period
  }
}

struct Envelope {
  union {
    hello @0 :Hello;                   # to the coordinator: the first message of a connection
    helloAck @1 :HelloAck;             # the coordinator's answer, to a worker or a client
    toCoordinator @2 :ToCoordinator;
    toWorker @3 :ToWorker;
    toClient @4 :ToClient;
    helloChallenge @5 :HelloChallenge; # the coordinator's challenge, between Hello and HelloAck
    helloProof @6 :HelloProof;         # the peer's answer to it
  }
}
