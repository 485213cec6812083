--------------------------- MODULE RoundProtocol ---------------------------
(***************************************************************************)
(* The ZK-ADAPT round protocol (DESIGN.md section 3), one state machine per *)
(* party, talking only through an append-only, totally ordered channel.    *)
(*                                                                         *)
(* Kept in step with:                                                      *)
(*   src/zkadapt/protocol/machine.py      the party's decisions            *)
(*                                        (next_action / apply)            *)
(*   src/zkadapt/protocol/model_check.py  the Python exhaustive checker    *)
(*                                        that drives machine.py through   *)
(*                                        the same actions and invariants  *)
(*   tests/protocol/test_spec_in_step.py  checks the names stay in step    *)
(*                                                                         *)
(* The work itself (training, sealing, proving, verifying, summing,        *)
(* decrypting, evaluating) is abstract: only its outcome is modelled.      *)
(* Key epochs are: Join, DealKey, KeygenStep, OpenKey, WaitKey and the    *)
(* key-deadline Halt are the machine's (machine._key_action, decide_key).  *)
(* See specs/README.md.                                                    *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, TLC

CONSTANTS
    Parties,        \* the session's parties (model values)
    T,              \* t: valid decryption shares that decrypt (0: updates in the clear)
    Q,              \* q: accepted updates a round needs
    Rounds,         \* rounds in the session
    MaxCrashes,     \* crash budget over the whole run
    FairDeadlines,  \* a deadline passes only once every live party's post arrived
    BadUpdates,     \* set of <<party, round>>: updates that fail verification
    BadShares,      \* set of parties whose decryption shares fail verification
    ShareSlack,     \* 0 normally; 1 = the broken variant: Combine uses T - 1 shares
    KeyGen,         \* "none" (keys abstracted), "dealer" / "additive", or "distributed"
    Dealer,         \* who deals with KeyGen "dealer" / "additive"
    RefreshEvery,   \* a fresh key every RefreshEvery rounds; 0: one key epoch
    DkgRounds,      \* message rounds of a distributed key generation
    DealerSilent    \* the dealer never deals (a silent dealing party or KGC)

ASSUME /\ Parties # {}
       /\ T \in Nat
       /\ Q \in Nat
       /\ Rounds \in Nat \ {0}
       /\ MaxCrashes \in Nat
       /\ FairDeadlines \in BOOLEAN
       /\ BadUpdates \subseteq Parties \X (1..Rounds)
       /\ BadShares \subseteq Parties
       /\ ShareSlack \in 0..T
       /\ KeyGen \in {"none", "dealer", "additive", "distributed"}
       /\ Dealer \in Parties
       /\ RefreshEvery \in Nat
       /\ DkgRounds \in Nat
       /\ DealerSilent \in BOOLEAN

VARIABLES
    channel,      \* the channel: a sequence of entries (records), in channel order
    st,           \* st[p]: p's PartyState (machine.PartyState, minus the views)
    alive,        \* alive[p]: FALSE while p is crashed (model_check: Node.state is None)
    training,     \* training[p]: TrainAndSubmit decided, Submitted not yet posted
    stopped,      \* stopped[p]: "no", "failed" (FailRound) or "halted" (Halt)
    checkpoint,   \* checkpoint[p]: [round, digest] of p's last checkpoint; survives crashes
    delivered,    \* delivered[p]: channel entries p has read (p's view is that prefix)
    crashesLeft,  \* what is left of the crash budget
    applied,      \* ghost: <<party, round, digest, accepted>> for every checkpointed round
    combines      \* ghost: <<party, round, shares combined, all of them valid?>>

vars == <<channel, st, alive, training, stopped, checkpoint, delivered,
          crashesLeft, applied, combines>>

(***************************************************************************)
(* Helpers                                                                 *)
(***************************************************************************)
Min(S) == CHOOSE i \in S : \A j \in S : i <= j
\* For SYMMETRY Perms in a safety-only .cfg without BadUpdates/BadShares (specs/README.md)
Perms == Permutations(Parties)
Range(f) == {f[i] : i \in DOMAIN f}

\* Valid decryption shares a party combines: t, or t - 1 in the broken variant.
Needed == T - ShareSlack

\* Decryption shares are only posted for sums of at least max(q, 2) updates.
MinSharedSum == IF Q > 2 THEN Q ELSE 2

(***************************************************************************)
(* Digests.  G(r) is a function of G(r-1), r and the accepted set, as in   *)
(* model_check._digest.  It is modelled as the sequence of accepted sets   *)
(* of rounds 1..r: Digest(prev, r, acc) = Append(prev, acc), whose length  *)
(* is r, so it determines (prev, r, acc) and is injective like a hash.     *)
(* (A sequence rather than a nested tuple keeps every digest of the same  *)
(* type, so TLC can compare any two of them.)                              *)
(***************************************************************************)
Genesis == << >>
Digest(prev, r, acc) == Append(prev, acc)

(***************************************************************************)
(* Channel entries (model_check.Entry).  All entries have the same fields; *)
(* the unused ones hold fixed defaults.                                    *)
(*   submitted  Submitted{round, party}                                    *)
(*   closed     PhaseClosed{round, submit}                                 *)
(*   rejected   Rejected{round, target, what}  what = "update" | "share"   *)
(*   failed     RoundFailed{round}                                         *)
(*   share      DecryptionShare{round}; acc = the accepted set it shares   *)
(*   done       RoundDone{round, digest, accepted}                         *)
(*   joined     Joined (round 0)                                           *)
(*   key        KeyDealt{epoch} (round 0)                                  *)
(*   keygen     KeyGenStep{epoch, step} (round 0)                          *)
(***************************************************************************)
Kinds == {"submitted", "closed", "rejected", "failed", "share", "done",
          "joined", "key", "keygen"}
Whats == {"none", "update", "share"}

Msg(kind, sender, r) ==
    [kind |-> kind, sender |-> sender, round |-> r, target |-> sender,
     what |-> "none", acc |-> {}, digest |-> Genesis, epoch |-> 0, step |-> 0]

KeyMsg(kind, sender, epoch, step) ==
    [Msg(kind, sender, 0) EXCEPT !.epoch = epoch, !.step = step]

RejectMsg(sender, r, target, what) ==
    [Msg("rejected", sender, r) EXCEPT !.target = target, !.what = what]

ShareMsg(sender, r, acc) == [Msg("share", sender, r) EXCEPT !.acc = acc]

DoneMsg(sender, r, digest, acc) ==
    [Msg("done", sender, r) EXCEPT !.digest = digest, !.acc = acc]

\* model_check._inert: an entry that every party, whatever its state, ignores
\* after the current channel (a second PhaseClosed of a round, a Submitted
\* after the cut, a party's second Submitted, share or RoundDone of a round).
\* Leaving it out of the channel merges states that differ only by it.
Inert(e) ==
    \E i \in 1..Len(channel) :
        LET o == channel[i] IN
        /\ o.round = e.round
        /\ \/ /\ e.kind \in {"closed", "submitted"}
              /\ o.kind = "closed"
           \/ /\ e.kind \in {"submitted", "share", "done"}
              /\ o.kind = e.kind
              /\ o.sender = e.sender

Post(e) == channel' = IF Inert(e) THEN channel ELSE Append(channel, e)

(***************************************************************************)
(* Views.  machine.RoundView is a fold of the entries a party has read;    *)
(* here it is computed from that prefix of the channel instead of stored.  *)
(***************************************************************************)
Prefix(p) == SubSeq(channel, 1, delivered[p])

Idx(s, kind, r) == {i \in 1..Len(s) : s[i].kind = kind /\ s[i].round = r}

HasCut(s, r) == Idx(s, "closed", r) # {}

\* The cut: the first PhaseClosed(r, submit) in channel order.
CutIdx(s, r) == Min(Idx(s, "closed", r))

\* The submitters before the cut: the candidates (RoundView.cut).
Cut(s, r) == {s[i].sender : i \in {j \in Idx(s, "submitted", r) : j < CutIdx(s, r)}}

\* RoundView.submitted: a Submitted after the cut is not a candidate.
SubmittedIn(s, r) ==
    IF HasCut(s, r) THEN Cut(s, r)
    ELSE {s[i].sender : i \in Idx(s, "submitted", r)}

\* RoundView.my_rejections of party p.
MyRejections(s, p, r) ==
    {<<s[i].target, s[i].what>> : i \in {j \in Idx(s, "rejected", r) : s[j].sender = p}}

FailedIn(s, r) == Idx(s, "failed", r) # {}

\* RoundView.shares: the first DecryptionShare per party, in channel order.
ShareIdx(s, r) ==
    {i \in Idx(s, "share", r) :
        ~\E j \in Idx(s, "share", r) : j < i /\ s[j].sender = s[i].sender}

ShareSenders(s, r) == {s[i].sender : i \in ShareIdx(s, r)}

DoneIn(s, r) == Idx(s, "done", r) # {}

(***************************************************************************)
(* Key epochs (machine._absorb_key / key_rules).  What a party read of     *)
(* joins, dealt keys and key-generation steps is computed from its prefix, *)
(* as the views are (PartyState.joined / dealt / keygen).                  *)
(***************************************************************************)
KeysOn == KeyGen # "none"
Distributed == KeyGen = "distributed"
NoDkg == <<0, 0>>  \* with dkgOn = FALSE: no key generation running here
NoEpoch == Rounds  \* no key epoch (epochs are 0..Rounds-1): keyOpen / keyPending unset

EpochOf(r) == IF RefreshEvery = 0 THEN 0 ELSE (r - 1) \div RefreshEvery

JoinedIn(s) == {s[i].sender : i \in {j \in 1..Len(s) : s[j].kind = "joined"}}

\* KeyPlan.source: whose KeyDealt carries p's key.
Source(p) == IF Distributed THEN p ELSE Dealer

Dealt(p, e) ==
    LET s == SubSeq(channel, 1, delivered[p]) IN
    \E i \in 1..Len(s) : s[i].kind = "key" /\ s[i].sender = Source(p) /\ s[i].epoch = e

KeygenPosted(p, e, k, q) ==
    LET s == SubSeq(channel, 1, delivered[p]) IN
    \E i \in 1..Len(s) :
        /\ s[i].kind = "keygen" /\ s[i].sender = q
        /\ s[i].epoch = e /\ s[i].step = k

(***************************************************************************)
(* Party state (machine.PartyState).  digests is a set of <<round, digest>> *)
(* (our digest of G(r) for finished rounds); pending is the round of a     *)
(* checkpoint whose RoundDone may be unposted, 0 for none; the "applied"   *)
(* field of PartyState is HasApplied below.                                *)
(***************************************************************************)
Fresh(round, digests, pending) ==
    [round |-> round, digests |-> digests, pending |-> pending,
     prepared |-> FALSE, submitPosted |-> FALSE, closePosted |-> FALSE,
     deadlinePassed |-> FALSE, verified |-> FALSE, accepted |-> {},
     rejected |-> {}, rejectionsPosted |-> {}, failurePosted |-> FALSE,
     summed |-> FALSE, sharePosted |-> FALSE, shareVerdicts |-> << >>,
     sharesDeadlinePassed |-> FALSE, combinedDone |-> FALSE,
     combined |-> << >>, keyDeadlinePassed |-> FALSE,
     keyOpen |-> NoEpoch, joinPending |-> FALSE, keyPending |-> NoEpoch,
     dkgOn |-> FALSE, dkg |-> NoDkg]

NoCheckpoint == [round |-> 0, digest |-> Genesis]

\* machine.start: at round 1, or after the last checkpointed round.
Start(c) ==
    IF c.round = 0 THEN Fresh(1, {}, 0)
    ELSE Fresh(c.round + 1, {<<c.round, c.digest>>}, c.round)

\* machine._next_round
NextRound(s) ==
    [Fresh(s.round + 1, s.digests, 0) EXCEPT
        !.keyOpen = s.keyOpen, !.joinPending = s.joinPending,
        !.keyPending = s.keyPending, !.dkgOn = s.dkgOn, !.dkg = s.dkg]

\* The state kept for a crashed party (model_check keeps None); never read.
DeadState == Start(NoCheckpoint)

DigestOf(s, r) == (CHOOSE x \in s.digests : x[1] = r)[2]

PrevDigest(s, r) ==
    IF \E x \in s.digests : x[1] = r - 1 THEN DigestOf(s, r - 1) ELSE Genesis

HasApplied(p) == \E x \in st[p].digests : x[1] = st[p].round

\* machine._check_agreement: a posted digest of a round we finished differs.
Disagrees(p) ==
    LET s == Prefix(p) IN
    \E x \in st[p].digests :
        \E i \in Idx(s, "done", x[1]) : s[i].digest # x[2]

IsRejected(p, target, what) ==
    \/ <<target, what>> \in MyRejections(Prefix(p), p, st[p].round)
    \/ <<target, what>> \in st[p].rejectionsPosted

UnrejectedUpdates(p) == {c \in st[p].rejected : ~IsRejected(p, c, "update")}

\* The first share of q for round r anywhere in the channel
\* (model_check._share_verdict looks at the whole channel).
ShareOf(r, q) ==
    channel[CHOOSE i \in ShareIdx(channel, r) : channel[i].sender = q]

\* A share verifies iff its sender is honest and it is a share of *our* sum.
ShareOk(p, q) ==
    /\ q \notin BadShares
    /\ ShareOf(st[p].round, q).acc = st[p].accepted

Checked(p) == {v[1] : v \in Range(st[p].shareVerdicts)}

UnrejectedShares(p) ==
    {v[1] : v \in {w \in Range(st[p].shareVerdicts) : ~w[2]}}
        \ {q \in Parties : IsRejected(p, q, "share")}

IsValidVerdict(v) == v[2]

\* The parties whose shares verified, in the order they were checked (channel order).
ValidShares(p) ==
    LET ok == SelectSeq(st[p].shareVerdicts, IsValidVerdict)
    IN  [i \in 1..Len(ok) |-> ok[i][1]]

\* machine.shares_to_combine: exactly the first Needed valid shares in channel
\* order (the caller checks that there are that many).
ShareToCombine(valid) == SubSeq(valid, 1, Needed)

\* Posted shares of our round not yet checked, as channel indices.
UncheckedShares(p) ==
    LET s == Prefix(p) IN
    {i \in ShareIdx(s, st[p].round) : s[i].sender \notin Checked(p)}

(***************************************************************************)
(* machine.next_action, as the name of the action.  "WaitCut" and          *)
(* "WaitShares" are Wait(r, "cut") and Wait(r, "shares").                  *)
(***************************************************************************)
BeforeCutStep(p) ==      \* machine._before_cut
    LET s == st[p]
        r == s.round
        v == Prefix(p)
    IN  IF p \notin SubmittedIn(v, r) /\ ~s.submitPosted THEN "TrainAndSubmit"
        ELSE IF s.closePosted THEN "WaitCut"
        ELSE IF Parties \subseteq SubmittedIn(v, r) THEN "CloseSubmissions"
        ELSE IF s.deadlinePassed THEN "CloseSubmissions"
        ELSE "WaitCut"

DecryptStep(p) ==        \* machine._decrypt (every party holds a key share)
    LET s == st[p]
        r == s.round
        v == Prefix(p)
    IN  IF Needed = 0 THEN "Combine"
        ELSE IF ~s.sharePosted /\ p \notin ShareSenders(v, r) /\ ~DoneIn(v, r)
             THEN "PostShare"
        ELSE IF UnrejectedShares(p) # {} THEN "Reject"
        ELSE IF Len(ValidShares(p)) >= Needed THEN "Combine"
        ELSE IF UncheckedShares(p) # {} THEN "CheckShare"
        ELSE IF s.sharesDeadlinePassed THEN "Halt"
        ELSE "WaitShares"

DecideKey(p) ==          \* key_rules.decide_key: "Open", "Deal", "Wait" or "Fail"
    LET s       == st[p]
        e       == EpochOf(s.round)
        joined  == JoinedIn(Prefix(p))
        mayDeal == \/ e > 0
                   \/ Parties \subseteq joined
                   \/ s.keyDeadlinePassed /\ ~Distributed
    IN  IF Dealt(p, e) THEN "Open"
        ELSE IF p = Source(p) /\ mayDeal THEN "Deal"
        ELSE IF ~s.keyDeadlinePassed THEN "Wait"
        ELSE "Fail"

KeygenName(p) ==         \* machine._keygen_action
    LET s == st[p]
        e == EpochOf(s.round)
    IN  IF ~s.dkgOn \/ s.dkg[1] # e
        THEN IF KeygenPosted(p, e, 0, p) THEN "Halt" ELSE "KeygenStep"
        ELSE IF \A q \in Parties : KeygenPosted(p, e, s.dkg[2], q) THEN "KeygenStep"
        ELSE IF s.keyDeadlinePassed THEN "Halt"
        ELSE "WaitKey"

KeyName(p) ==            \* machine._key_action; "WaitKey" is Wait(r, "key")
    LET s == st[p]
        d == DecideKey(p)
    IN  IF p \notin JoinedIn(Prefix(p))
        THEN IF s.joinPending THEN "WaitKey" ELSE "Join"
        ELSE IF d = "Open" THEN "OpenKey"
        ELSE IF d = "Fail" THEN "Halt"
        ELSE IF d = "Deal" /\ s.keyPending = EpochOf(s.round) THEN "WaitKey"
        ELSE IF d = "Deal" /\ Distributed THEN KeygenName(p)
        ELSE IF d = "Deal" THEN "DealKey"
        ELSE "WaitKey"

NextName(p) ==           \* machine.next_action
    LET s == st[p]
        r == s.round
    IN  IF Disagrees(p) THEN "Halt"
        ELSE IF s.pending # 0 THEN "Announce"
        ELSE IF r > Rounds THEN "Finish"
        ELSE IF KeysOn /\ s.keyOpen # EpochOf(r) THEN KeyName(p)
        ELSE IF ~s.prepared THEN "Prepare"
        ELSE IF ~HasCut(Prefix(p), r) THEN BeforeCutStep(p)
        ELSE IF ~s.verified THEN "Verify"
        ELSE IF UnrejectedUpdates(p) # {} THEN "Reject"
        ELSE IF Cardinality(s.accepted) < Q THEN "FailRound"
        ELSE IF ~s.summed THEN "Sum"
        ELSE IF ~s.combinedDone THEN DecryptStep(p)
        ELSE IF ~HasApplied(p) THEN "Apply"
        ELSE "Announce"

\* p is running, not blocked in training: it may read, decide and act.
Running(p) == alive[p] /\ stopped[p] = "no" /\ ~training[p]

Decides(p, name) == Running(p) /\ NextName(p) = name

(***************************************************************************)
(* Init                                                                    *)
(***************************************************************************)
Init ==
    /\ channel = << >>
    /\ st = [p \in Parties |-> Start(NoCheckpoint)]
    /\ alive = [p \in Parties |-> TRUE]
    /\ training = [p \in Parties |-> FALSE]
    /\ stopped = [p \in Parties |-> "no"]
    /\ checkpoint = [p \in Parties |-> NoCheckpoint]
    /\ delivered = [p \in Parties |-> 0]
    /\ crashesLeft = MaxCrashes
    /\ applied = {}
    /\ combines = {}

(***************************************************************************)
(* Deliver(p): the next channel entry reaches p (machine.apply of a        *)
(* ChannelMessage).  The view is the read prefix, so only what apply      *)
(* changes outside the views is updated: a replayed own RoundDone clears   *)
(* the pending announce.  A training party reads nothing (RoundProtocol    *)
(* blocks in training).                                                    *)
(***************************************************************************)
Deliver(p) ==
    /\ Running(p)
    /\ delivered[p] < Len(channel)
    /\ LET e == channel[delivered[p] + 1] IN
       st' = IF /\ e.kind = "done"
                /\ e.sender = p
                /\ st[p].pending # 0
                /\ e.round = st[p].pending
             THEN [st EXCEPT ![p].pending = 0]
             ELSE IF e.kind = "joined" /\ e.sender = p
             THEN [st EXCEPT ![p].joinPending = FALSE]
             ELSE IF /\ e.kind = "key"
                     /\ e.sender = Source(p)
                     /\ e.epoch = st[p].keyPending
             THEN [st EXCEPT ![p].keyPending = NoEpoch]
             ELSE st
    /\ delivered' = [delivered EXCEPT ![p] = @ + 1]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, crashesLeft,
                   applied, combines>>

(***************************************************************************)
(* Act(p): p does what next_action names, on the prefix it has read (a     *)
(* real party's view always lags the channel a little), and the result is *)
(* folded back in (machine.apply of Done).                                 *)
(***************************************************************************)
\* Key epochs (DESIGN.md section 4): machine._key_action's actions.
Join(p) ==
    /\ Decides(p, "Join")
    /\ Post(KeyMsg("joined", p, 0, 0))
    /\ st' = [st EXCEPT ![p].joinPending = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* A silent dealer decides DealKey but never carries it out.
DealKey(p) ==
    /\ Decides(p, "DealKey")
    /\ ~DealerSilent
    /\ LET e == EpochOf(st[p].round) IN
       /\ Post(KeyMsg("key", p, e, 0))
       /\ st' = [st EXCEPT ![p].keyPending = e]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* The next message round of a distributed key generation; after DkgRounds of
\* them, our own KeyDealt.  Each step starts a new key deadline.
KeygenStep(p) ==
    /\ Decides(p, "KeygenStep")
    /\ LET s == st[p]
           e == EpochOf(s.round)
           k == IF s.dkgOn /\ s.dkg[1] = e THEN s.dkg[2] + 1 ELSE 0
       IN  IF k < DkgRounds
           THEN /\ Post(KeyMsg("keygen", p, e, k))
                /\ st' = [st EXCEPT ![p].dkgOn = TRUE, ![p].dkg = <<e, k>>,
                                     ![p].keyDeadlinePassed = FALSE]
           ELSE /\ Post(KeyMsg("key", p, e, 0))
                /\ st' = [st EXCEPT ![p].keyPending = e, ![p].dkgOn = FALSE,
                                     ![p].dkg = NoDkg, ![p].keyDeadlinePassed = FALSE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

OpenKey(p) ==
    /\ Decides(p, "OpenKey")
    /\ st' = [st EXCEPT ![p].keyOpen = EpochOf(st[p].round),
                         ![p].keyDeadlinePassed = FALSE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

Prepare(p) ==
    /\ Decides(p, "Prepare")
    /\ st' = [st EXCEPT ![p].prepared = TRUE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Training takes time: p is busy until Submit posts its update.
TrainAndSubmit(p) ==
    /\ Decides(p, "TrainAndSubmit")
    /\ training' = [training EXCEPT ![p] = TRUE]
    /\ UNCHANGED <<channel, st, alive, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* The end of training: Submitted lands in the channel now (maybe after the cut).
Submit(p) ==
    /\ alive[p]
    /\ stopped[p] = "no"
    /\ training[p]
    /\ Post(Msg("submitted", p, st[p].round))
    /\ st' = [st EXCEPT ![p].submitPosted = TRUE]
    /\ training' = [training EXCEPT ![p] = FALSE]
    /\ UNCHANGED <<alive, stopped, checkpoint, delivered, crashesLeft,
                   applied, combines>>

CloseSubmissions(p) ==
    /\ Decides(p, "CloseSubmissions")
    /\ Post(Msg("closed", p, st[p].round))
    /\ st' = [st EXCEPT ![p].closePosted = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Verification is deterministic: an update verifies unless it is a bad one.
Verify(p) ==
    /\ Decides(p, "Verify")
    /\ LET r   == st[p].round
           cut == Cut(Prefix(p), r)
           bad == {c \in cut : <<c, r>> \in BadUpdates}
       IN  st' = [st EXCEPT ![p].verified = TRUE,
                            ![p].accepted = cut \ bad,
                            ![p].rejected = bad]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Post Rejected once for each bad update (after Verify) or share (while decrypting).
Reject(p) ==
    /\ Decides(p, "Reject")
    /\ LET r      == st[p].round
           upd    == UnrejectedUpdates(p)
           what   == IF upd # {} THEN "update" ELSE "share"
           target == IF upd # {} THEN CHOOSE c \in upd : TRUE
                     ELSE CHOOSE c \in UnrejectedShares(p) : TRUE
       IN  /\ Post(RejectMsg(p, r, target, what))
           /\ st' = [st EXCEPT ![p].rejectionsPosted = @ \cup {<<target, what>>}]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Fewer than q accepted: post RoundFailed (unless one is known) and stop.
FailRound(p) ==
    /\ Decides(p, "FailRound")
    /\ LET r == st[p].round IN
       IF FailedIn(Prefix(p), r) \/ st[p].failurePosted
       THEN UNCHANGED channel
       ELSE Post(Msg("failed", p, r))
    /\ stopped' = [stopped EXCEPT ![p] = "failed"]
    /\ UNCHANGED <<st, alive, training, checkpoint, delivered, crashesLeft,
                   applied, combines>>

Sum(p) ==
    /\ Decides(p, "Sum")
    /\ st' = [st EXCEPT ![p].summed = TRUE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Our decryption share of the sum of our accepted set.
PostShare(p) ==
    /\ Decides(p, "PostShare")
    /\ Post(ShareMsg(p, st[p].round, st[p].accepted))
    /\ st' = [st EXCEPT ![p].sharePosted = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Verify the first posted share (channel order) not yet checked.
CheckShare(p) ==
    /\ Decides(p, "CheckShare")
    /\ LET v == Prefix(p)
           q == v[Min(UncheckedShares(p))].sender
       IN  st' = [st EXCEPT ![p].shareVerdicts = Append(@, <<q, ShareOk(p, q)>>)]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Decrypt from exactly ShareToCombine of the valid shares (none for plain updates).
Combine(p) ==
    /\ Decides(p, "Combine")
    /\ LET chosen   == IF Needed = 0 THEN << >> ELSE ShareToCombine(ValidShares(p))
           allValid == \A i \in 1..Len(chosen) : ShareOk(p, chosen[i])
       IN  /\ st' = [st EXCEPT ![p].combinedDone = TRUE, ![p].combined = chosen]
           /\ combines' = combines \cup {<<p, st[p].round, chosen, allValid>>}
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied>>

\* G(r) = outer_step(G(r-1), mean); checkpoint (survives crashes).
Apply(p) ==
    /\ Decides(p, "Apply")
    /\ LET s == st[p]
           r == s.round
           d == Digest(PrevDigest(s, r), r, s.accepted)
       IN  /\ st' = [st EXCEPT ![p].digests = @ \cup {<<r, d>>}]
           /\ checkpoint' = [checkpoint EXCEPT ![p] = [round |-> r, digest |-> d]]
           /\ applied' = applied \cup {<<p, r, d, s.accepted>>}
    /\ UNCHANGED <<channel, alive, training, stopped, delivered, crashesLeft,
                   combines>>

\* Post RoundDone: for a checkpoint a crash may have cut off (pending), or for
\* the round just applied, which moves p on to the next round.
Announce(p) ==
    /\ Decides(p, "Announce")
    /\ LET s == st[p] IN
       IF s.pending # 0
       THEN /\ Post(DoneMsg(p, s.pending, DigestOf(s, s.pending), {}))
            /\ st' = [st EXCEPT ![p].pending = 0]
       ELSE /\ Post(DoneMsg(p, s.round, DigestOf(s, s.round), s.accepted))
            /\ st' = [st EXCEPT ![p] = NextRound(s)]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

\* Digests disagree, the shares deadline passed with too few valid shares, or
\* the key deadline passed and decide_key gave up (or a key generation broke).
Halt(p) ==
    /\ Decides(p, "Halt")
    /\ stopped' = [stopped EXCEPT ![p] = "halted"]
    /\ UNCHANGED <<channel, st, alive, training, checkpoint, delivered,
                   crashesLeft, applied, combines>>

Act(p) ==
    \/ Submit(p)
    \/ Join(p)
    \/ DealKey(p)
    \/ KeygenStep(p)
    \/ OpenKey(p)
    \/ Prepare(p)
    \/ TrainAndSubmit(p)
    \/ CloseSubmissions(p)
    \/ Verify(p)
    \/ Reject(p)
    \/ FailRound(p)
    \/ Sum(p)
    \/ PostShare(p)
    \/ CheckShare(p)
    \/ Combine(p)
    \/ Apply(p)
    \/ Announce(p)
    \/ Halt(p)

(***************************************************************************)
(* Timeout(p): p's local deadline (submissions, or decryption shares)      *)
(* passes while it waits.  Unfair deadlines may pass any time; fair ones   *)
(* only once p has read the whole channel and every party whose post it    *)
(* waits for is crashed or stopped (model_check._deadline_may_pass).       *)
(***************************************************************************)
DeadlineFair(p) ==
    LET v      == Prefix(p)
        r      == st[p].round
        posted == IF NextName(p) = "WaitCut" THEN SubmittedIn(v, r)
                  ELSE ShareSenders(v, r)
    IN  /\ delivered[p] = Len(channel)
        /\ \A q \in Parties \ posted : ~alive[q] \/ stopped[q] # "no"

Gone(q) == ~alive[q] \/ stopped[q] # "no"

\* model_check._key_deadline_may_pass: nothing p waits for is still to come.
KeyDeadlineFair(p) ==
    LET s       == st[p]
        joined  == JoinedIn(channel)
        awaited == Distributed /\ s.dkgOn
    IN  /\ delivered[p] = Len(channel)
        /\ \A q \in Parties :
             /\ (q \notin joined => Gone(q))
             /\ (~Distributed /\ q = Dealer /\ q # p /\ ~DealerSilent => Gone(q))
             /\ (awaited /\ ~KeygenPosted(p, s.dkg[1], s.dkg[2], q) => Gone(q))

\* Wait(r, "key"); a silent dealer's DealKey never happens, so it waits too.
WaitsForKey(p) ==
    \/ NextName(p) = "WaitKey"
    \/ NextName(p) = "DealKey" /\ DealerSilent

Timeout(p) ==
    /\ Running(p)
    /\ \/ NextName(p) = "WaitCut" /\ ~st[p].deadlinePassed
       \/ NextName(p) = "WaitShares" /\ ~st[p].sharesDeadlinePassed
       \/ WaitsForKey(p) /\ ~st[p].keyDeadlinePassed
    /\ FairDeadlines => IF WaitsForKey(p) THEN KeyDeadlineFair(p) ELSE DeadlineFair(p)
    /\ st' = IF NextName(p) = "WaitCut"
             THEN [st EXCEPT ![p].deadlinePassed = TRUE]
             ELSE IF WaitsForKey(p)
             THEN [st EXCEPT ![p].keyDeadlinePassed = TRUE]
             ELSE [st EXCEPT ![p].sharesDeadlinePassed = TRUE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines>>

(***************************************************************************)
(* Crash(p) / Restart(p).  A crash loses everything but the checkpoint; a  *)
(* stopped process does not crash or restart.  A restart is machine.start  *)
(* from the checkpoint followed by a replay of the whole channel, which    *)
(* clears the pending announce if our RoundDone did reach the channel.     *)
(***************************************************************************)
Crash(p) ==
    /\ crashesLeft > 0
    /\ alive[p]
    /\ stopped[p] = "no"
    /\ alive' = [alive EXCEPT ![p] = FALSE]
    /\ training' = [training EXCEPT ![p] = FALSE]
    /\ delivered' = [delivered EXCEPT ![p] = 0]
    /\ st' = [st EXCEPT ![p] = DeadState]
    /\ crashesLeft' = crashesLeft - 1
    /\ UNCHANGED <<channel, stopped, checkpoint, applied, combines>>

Replay(p) ==
    LET s == Start(checkpoint[p]) IN
    IF /\ s.pending # 0
       /\ \E i \in Idx(channel, "done", s.pending) : channel[i].sender = p
    THEN [s EXCEPT !.pending = 0]
    ELSE s

Restart(p) ==
    /\ ~alive[p]
    /\ stopped[p] = "no"
    /\ alive' = [alive EXCEPT ![p] = TRUE]
    /\ st' = [st EXCEPT ![p] = Replay(p)]
    /\ delivered' = [delivered EXCEPT ![p] = Len(channel)]
    /\ UNCHANGED <<channel, training, stopped, checkpoint, crashesLeft,
                   applied, combines>>

(***************************************************************************)
(* The specification                                                       *)
(***************************************************************************)
Next ==
    \E p \in Parties :
        \/ Deliver(p)
        \/ Act(p)
        \/ Timeout(p)
        \/ Crash(p)
        \/ Restart(p)

\* Every live party keeps reading and acting, and a local deadline always
\* passes eventually (clocks advance); FairDeadlines only restricts *when* it
\* may pass (see Timeout).  No fairness on Crash or Restart: a crashed party
\* may stay down for good.
Fairness ==
    \A p \in Parties :
        /\ WF_vars(Deliver(p))
        /\ WF_vars(Act(p))
        /\ WF_vars(Timeout(p))

Spec == Init /\ [][Next]_vars /\ Fairness

(***************************************************************************)
(* Invariants (model_check.agreement / threshold_safety / quorum_safety)   *)
(***************************************************************************)
TypeOK ==
    /\ channel \in Seq([kind: Kinds, sender: Parties, round: 0..Rounds,
                        target: Parties, what: Whats, acc: SUBSET Parties,
                        digest: Seq(SUBSET Parties), epoch: 0..Rounds,
                        step: 0..DkgRounds])
    /\ \A p \in Parties :
         /\ st[p].round \in 1..(Rounds + 1)
         /\ st[p].digests \subseteq (1..Rounds) \X Seq(SUBSET Parties)
         /\ st[p].pending \in 0..Rounds
         /\ st[p].prepared \in BOOLEAN
         /\ st[p].submitPosted \in BOOLEAN
         /\ st[p].closePosted \in BOOLEAN
         /\ st[p].deadlinePassed \in BOOLEAN
         /\ st[p].verified \in BOOLEAN
         /\ st[p].accepted \subseteq Parties
         /\ st[p].rejected \subseteq Parties
         /\ st[p].rejectionsPosted \subseteq Parties \X Whats
         /\ st[p].failurePosted \in BOOLEAN
         /\ st[p].summed \in BOOLEAN
         /\ st[p].sharePosted \in BOOLEAN
         /\ st[p].shareVerdicts \in Seq(Parties \X BOOLEAN)
         /\ st[p].sharesDeadlinePassed \in BOOLEAN
         /\ st[p].combinedDone \in BOOLEAN
         /\ st[p].combined \in Seq(Parties)
         /\ st[p].keyDeadlinePassed \in BOOLEAN
         /\ st[p].keyOpen \in 0..Rounds
         /\ st[p].joinPending \in BOOLEAN
         /\ st[p].keyPending \in 0..Rounds
         /\ st[p].dkgOn \in BOOLEAN
         /\ st[p].dkg \in (0..Rounds) \X (0..DkgRounds)
    /\ alive \in [Parties -> BOOLEAN]
    /\ training \in [Parties -> BOOLEAN]
    /\ stopped \in [Parties -> {"no", "failed", "halted"}]
    /\ checkpoint \in [Parties -> [round: 0..Rounds, digest: Seq(SUBSET Parties)]]
    /\ \A p \in Parties : delivered[p] \in 0..Len(channel)
    /\ crashesLeft \in 0..MaxCrashes
    /\ applied \subseteq Parties \X (1..Rounds) \X Seq(SUBSET Parties) \X (SUBSET Parties)
    /\ combines \subseteq Parties \X (1..Rounds) \X Seq(Parties) \X BOOLEAN

\* Every party that finishes round r holds the same digest of G(r).
Agreement ==
    \A a, b \in applied : a[2] = b[2] => a[3] = b[3]

\* No sum is decrypted from fewer than t valid shares, and decryption shares
\* exist only for sums of at least max(q, 2) updates (so no individual update
\* is ever decrypted).
ThresholdSafety ==
    /\ \A c \in combines : Cardinality(Range(c[3])) >= T /\ c[4]
    /\ \A i \in 1..Len(channel) :
         channel[i].kind = "share" => Cardinality(channel[i].acc) >= MinSharedSum

\* No round completes with fewer than q accepted updates.
QuorumSafety ==
    \A a \in applied : Cardinality(a[4]) >= Q

(***************************************************************************)
(* Progress.  model_check.progress checks, in every terminal state (only  *)
(* Crash/Restart left) with at least q live parties, that every live party *)
(* has finished every round and none stopped; the Python graph is acyclic, *)
(* so every maximal run ends in such a state.  Here: crashes are bounded  *)
(* and every Restart follows a Crash, so Live is eventually constant; if   *)
(* it ends with at least q parties, eventually every live party is done    *)
(* for good.  (The plain "Cardinality(Live) >= Q ~> AllDone" would also    *)
(* hold for the shipped .cfg, where one crash of three leaves two = q, but *)
(* is wrong in general: a crash after the premise held may leave fewer     *)
(* than q parties, and then nothing promises progress.)  Checked only with *)
(* FairDeadlines = TRUE: an early deadline may leave a round below quorum. *)
(***************************************************************************)
Live == {p \in Parties : alive[p]}

AllDone ==
    \A p \in Live :
        /\ stopped[p] = "no"
        /\ st[p].round > Rounds
        /\ st[p].pending = 0

Progress == <>[](Cardinality(Live) >= Q) => <>[]AllDone

=============================================================================
