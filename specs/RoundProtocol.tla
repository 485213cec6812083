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
(* Key epochs are: Join, DealKey, KeygenStep, OpenKey, WaitKey, and a      *)
(* party without a key follows the round from the channel (machine.        *)
(* _key_action, lacks_key, _without_key; key_rules.decide_key).           *)
(*                                                                         *)
(* THREATS.md (issue 16): the submit phase closes at the CloseVotes-th     *)
(* distinct PhaseClosed and a decryption fails at the CloseVotes-th        *)
(* RoundFailed; key holders decrypt only accepted sets of MinAccepted or   *)
(* more; an entry no honest party could post at its place is a violation   *)
(* and changes no view (Counted); a RoundDone contradicting our outcome   *)
(* names its sender (Reject), and a party halts only when max(Q, 2) others *)
(* contradict it; a party in MaliciousParties runs no machine and posts    *)
(* any message (Malicious).  A failed round is an outcome: G(r) = G(r-1)   *)
(* and the session goes on with round r+1.                                 *)
(*                                                                         *)
(* Membership (issue 20, docs/membership.md): a party in Newcomers is in   *)
(* no session file.  It posts a JoinRequest (RequestJoin) at any point;    *)
(* with Admission "open" it is a member from the round after the one      *)
(* whose cut follows the request, with "vote" from the round after the    *)
(* one whose cut follows the Votes-th member's Admit.  Until then it       *)
(* follows the rounds, posting nothing (WaitFollow, Advance).  Members of  *)
(* a round are a function of the channel, like the views (MembersAt).     *)
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
    DealerSilent,   \* the dealer never deals (a silent dealing party or KGC)
    CloseVotes,     \* distinct PhaseClosed (RoundFailed) votes that close a submit
                    \* phase (fail a decryption): MachineSpec.close_votes
    MinAccepted,    \* key holders decrypt only accepted sets this large (0: no floor)
    MaliciousParties, \* {} or one party that runs no machine and posts anything
    MaliciousPosts, \* the malicious party's budget of posts that change a view
    Newcomers,      \* parties no session file lists: they ask to join (subset of Parties)
    Admission,      \* "open" or "vote" (membership.admission)
    Votes           \* distinct members' Admit that approve a request ("vote")

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
       /\ CloseVotes \in 1..Cardinality(Parties)
       /\ MinAccepted \in Nat
       /\ MaliciousParties \subseteq Parties
       /\ Cardinality(MaliciousParties) <= 1
       /\ MaliciousParties # {} => KeyGen = "none"
       /\ MaliciousPosts \in Nat
       /\ Newcomers \subseteq Parties \ MaliciousParties
       /\ Newcomers # {} => KeyGen = "none"
       /\ Admission \in {"open", "vote"}
       /\ Votes \in Nat \ {0}

VARIABLES
    channel,      \* the channel: a sequence of entries (records), in channel order
    st,           \* st[p]: p's PartyState (machine.PartyState, minus the views)
    alive,        \* alive[p]: FALSE while p is crashed (model_check: Node.state is None)
    training,     \* training[p]: TrainAndSubmit decided, Submitted not yet posted
    stopped,      \* stopped[p]: "no", "halted" (Halt) or "malicious" (runs no machine)
    checkpoint,   \* checkpoint[p]: [round, digest] of p's last checkpoint; survives crashes
    delivered,    \* delivered[p]: channel entries p has read (p's view is that prefix)
    crashesLeft,  \* what is left of the crash budget
    malLeft,      \* what is left of the malicious party's budget (World.malicious_left)
    applied,      \* ghost: <<party, round, digest, accepted>> for every checkpointed round
    combines,     \* ghost: <<party, round, shares combined, all valid?, accepted set>>
    failed        \* ghost: <<party, round>> for every round a party decided failed

vars == <<channel, st, alive, training, stopped, checkpoint, delivered,
          crashesLeft, malLeft, applied, combines, failed>>

(***************************************************************************)
(* Helpers                                                                 *)
(***************************************************************************)
Min(S) == CHOOSE i \in S : \A j \in S : i <= j
Max(a, b) == IF a >= b THEN a ELSE b
\* For SYMMETRY Perms in a safety-only .cfg without BadUpdates/BadShares (specs/README.md)
Perms == Permutations(Parties)
Range(f) == {f[i] : i \in DOMAIN f}
Honest == Parties \ MaliciousParties
Listed == Parties \ Newcomers  \* the session file's parties

\* Valid decryption shares a party combines: t, or t - 1 in the broken variant.
Needed == T - ShareSlack

\* Decryption shares are only posted for sums of at least max(q, 2) updates.
MinSharedSum == IF Q > 2 THEN Q ELSE 2

(***************************************************************************)
(* Digests.  G(r) is a function of G(r-1), r and the accepted set, as in   *)
(* model_check._digest ("G0|1:alice+bob|3:bob+carol").  It is modelled as  *)
(* the sequence of <<round, accepted set>> of the rounds done up to r: a   *)
(* failed round leaves G as it was (G(r) = G(r-1)), so the round numbers   *)
(* keep it injective like a hash.  Evil is a digest no honest party        *)
(* computes (round 0): what a malicious RoundDone carries when it lies.    *)
(***************************************************************************)
Genesis == << >>
Digest(prev, r, acc) == Append(prev, <<r, acc>>)
Evil == << <<0, {}>> >>

(***************************************************************************)
(* Channel entries (model_check.Entry).  All entries have the same fields; *)
(* the unused ones hold fixed defaults.                                    *)
(*   submitted  Submitted{round, party}; what: the malicious party's       *)
(*              update, "good", "bad" (fails verification) or "overflow"   *)
(*              (verifies, takes the decrypted aggregate out of range)     *)
(*   closed     PhaseClosed{round, submit}: a vote                         *)
(*   rejected   Rejected{round, target, what}  what = "update" | "share" | *)
(*              "digest" (its RoundDone contradicts our outcome)          *)
(*   failed     RoundFailed{round}: a vote                                 *)
(*   share      DecryptionShare{round}; acc = the accepted set it shares;  *)
(*              the malicious party's: what = "valid" | "invalid"          *)
(*   done       RoundDone{round, digest, accepted}                         *)
(*   joined     Joined (round 0)                                           *)
(*   key        KeyDealt{epoch} (round 0)                                  *)
(*   keygen     KeyGenStep{epoch, step} (round 0)                          *)
(*   join       JoinRequest of a newcomer (round 0)                        *)
(*   admit      Admit{target = the candidate} by a member (round 0)        *)
(***************************************************************************)
Kinds == {"submitted", "closed", "rejected", "failed", "share", "done",
          "joined", "key", "keygen", "join", "admit"}
RoundKinds == {"submitted", "closed", "failed", "share", "done"}
Whats == {"none", "update", "share", "digest", "good", "bad", "overflow",
          "valid", "invalid"}

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

MalMsg(kind, sender, r, what, digest) ==
    [Msg(kind, sender, r) EXCEPT !.what = what, !.digest = digest]

(***************************************************************************)
(* Views.  machine.RoundView is a fold of the entries a party has read;    *)
(* here it is computed from that prefix of the channel instead of stored.  *)
(* An entry that no honest party could post at its place                   *)
(* (machine._impossible) is recorded as a violation and otherwise ignored: *)
(* Counted(s) is the set of indices of the entries of s that are not.  The *)
(* C-operators read a sequence s through such a set C of its indices.     *)
(***************************************************************************)
CIdx(s, C, kind, r) == {i \in C : s[i].kind = kind /\ s[i].round = r}

\* The first counted entry of a kind per sender.
FirstOf(s, C, kind, r) ==
    {i \in CIdx(s, C, kind, r) :
        ~\E j \in CIdx(s, C, kind, r) : j < i /\ s[j].sender = s[i].sender}

\* The distinct senders of counted entries of a kind up to index upto.
SendersUpTo(s, C, kind, r, upto) ==
    {s[j].sender : j \in {k \in CIdx(s, C, kind, r) : k <= upto}}

\* The entry where the CloseVotes-th distinct voter voted (kind "closed": the
\* cut; "failed": the decryption failed); 0 while there are fewer votes.
VoteIdx(s, C, kind, r) ==
    LET at == {i \in CIdx(s, C, kind, r) :
                 Cardinality(SendersUpTo(s, C, kind, r, i)) >= CloseVotes}
    IN  IF at = {} THEN 0 ELSE Min(at)

\* RoundView.submitted: counted submitters, frozen at the cut once it fell.
CSubmitted(s, C, r) ==
    LET cut == VoteIdx(s, C, "closed", r) IN
    {s[i].sender : i \in {j \in CIdx(s, C, "submitted", r) : cut = 0 \/ j < cut}}

\* RoundView.finished_by: p's RoundDone or RoundFailed of r is there, or r
\* failed by votes.
CFinished(s, C, r, p) ==
    \/ VoteIdx(s, C, "failed", r) # 0
    \/ \E i \in CIdx(s, C, "failed", r) \cup CIdx(s, C, "done", r) : s[i].sender = p

(***************************************************************************)
(* Membership (machine.members_of; membership.py).  Over the entries of s  *)
(* before index i (the counted ones C among them): a request is approved   *)
(* at its entry ("open") or at the Votes-th distinct Admit for it by a     *)
(* member of the round in progress ("vote"); approved during round r (     *)
(* before r's cut), its sender is a member from r + 1.  A request during   *)
(* the last round is refused (no round left): it is never a member, and    *)
(* its sender stops (JoinRefused).  The model's newcomers are honest with  *)
(* distinct names and keys, so no other refusal arises here (the unit     *)
(* tests cover them: tests/protocol/test_membership.py).                  *)
(***************************************************************************)
RequestIdx(s, n) ==
    LET I == {i \in 1..Len(s) : s[i].kind = "join" /\ s[i].sender = n}
    IN  IF I = {} THEN 0 ELSE Min(I)

\* The round in progress at index i: the first whose cut is not before i.
InProgress(s, C, i) ==
    LET cut == {r \in 1..Rounds : VoteIdx(s, C, "closed", r) # 0
                                  /\ VoteIdx(s, C, "closed", r) < i}
    IN  Cardinality(cut) + 1

RECURSIVE MembersBefore(_, _, _, _), ApprovalIdx(_, _, _), AdmittedFrom(_, _, _)

\* Where n's request is approved (0: not yet, or refused).
ApprovalIdx(s, C, n) ==
    LET q == RequestIdx(s, n) IN
    IF q = 0 \/ InProgress(s, C, q) >= Rounds THEN 0
    ELSE IF Admission = "open" THEN q
    ELSE LET A == {i \in (q + 1)..Len(s) :
                     /\ s[i].kind = "admit" /\ s[i].target = n
                     /\ s[i].sender \in MembersBefore(s, C, i, InProgress(s, C, i))
                     /\ Cardinality({s[j].sender : j \in
                          {k \in (q + 1)..i : s[k].kind = "admit" /\ s[k].target = n
                                              /\ s[k].sender \in
                                                 MembersBefore(s, C, k, InProgress(s, C, k))}})
                        >= Votes}
         IN  IF A = {} THEN 0 ELSE Min(A)

\* The first round n is a member of (Rounds + 1: never).
AdmittedFrom(s, C, n) ==
    LET a == ApprovalIdx(s, C, n)
        R == {r \in 1..Rounds : VoteIdx(s, C, "closed", r) > a}
    IN  IF n \in Listed THEN 1
        ELSE IF a = 0 \/ R = {} THEN Rounds + 1 ELSE Min(R) + 1

\* The members of round r as the entries of s before index i decide them.
MembersBefore(s, C, i, r) ==
    Listed \cup {n \in Newcomers :
                   AdmittedFrom(SubSeq(s, 1, i - 1), C \cap 1..(i - 1), n) <= r}

MembersAt(s, C, r) == MembersBefore(s, C, Len(s) + 1, r)

\* machine._impossible, for entry i of s after the counted entries C (< i).
Possible(s, i, C) ==
    LET e == s[i] IN
    \/ e.kind \notin RoundKinds
    \/ /\ e.sender \in MembersBefore(s, C, i, e.round)
       /\ e.round > AdmittedFrom(SubSeq(s, 1, i - 1), C, e.sender)
            => CFinished(s, C, e.round - 1, e.sender)
       /\ e.kind = "submitted" => e.sender \notin CSubmitted(s, C, e.round)
       /\ e.kind \in {"share", "failed", "done"} => VoteIdx(s, C, "closed", e.round) # 0
       /\ e.kind = "done" => Cardinality(FirstOf(s, C, "share", e.round)) >= Needed

Counted(s) ==
    LET c[i \in 0..Len(s)] ==
            IF i = 0 THEN {}
            ELSE IF Possible(s, i, c[i - 1]) THEN c[i - 1] \cup {i} ELSE c[i - 1]
    IN  c[Len(s)]

Prefix(p) == SubSeq(channel, 1, delivered[p])

\* The members of round r in s (a prefix of the channel).
Members(s, r) == MembersAt(s, Counted(s), r)

\* p's request is on the channel and was refused (during the last round).
JoinRefused(s, p) ==
    /\ p \in Newcomers
    /\ RequestIdx(s, p) # 0
    /\ InProgress(s, Counted(s), RequestIdx(s, p)) >= Rounds

Idx(s, kind, r) == {i \in 1..Len(s) : s[i].kind = kind /\ s[i].round = r}

HasCut(s, r) == VoteIdx(s, Counted(s), "closed", r) # 0

\* The submitters before the cut: the candidates (RoundView.cut).
Cut(s, r) == CSubmitted(s, Counted(s), r)

\* RoundView.submitted: a Submitted after the cut is not a candidate.
SubmittedIn(s, r) == CSubmitted(s, Counted(s), r)

\* RoundView.closers: who voted to close (its own vote once read back).
Closers(s, r) == SendersUpTo(s, Counted(s), "closed", r, Len(s))

\* RoundView.my_rejections of party p (a party reads only its own Rejected).
MyRejections(s, p, r) ==
    {<<s[i].target, s[i].what>> : i \in {j \in Idx(s, "rejected", r) : s[j].sender = p}}

\* RoundView.failed / failers / failed_at.
FailedAt(s, r) == VoteIdx(s, Counted(s), "failed", r)
FailedIn(s, r) == FailedAt(s, r) # 0
Failers(s, r) == SendersUpTo(s, Counted(s), "failed", r, Len(s))

\* RoundView.shares: the first counted DecryptionShare per party, in channel order.
ShareIdx(s, r) == FirstOf(s, Counted(s), "share", r)

ShareSenders(s, r) == {s[i].sender : i \in ShareIdx(s, r)}

\* The shares that count: those before the CloseVotes-th RoundFailed.
CountedShareIdx(s, r) ==
    {i \in ShareIdx(s, r) : FailedAt(s, r) = 0 \/ i < FailedAt(s, r)}

\* RoundView.done: the first counted RoundDone per party.
DoneIdx(s, r) == FirstOf(s, Counted(s), "done", r)

\* model_check._inert: an entry that leaves every view as it was (a PhaseClosed
\* or Submitted after the cut; a party's second PhaseClosed, share, RoundFailed
\* or RoundDone of a round).  Leaving it out of the channel merges states that
\* differ only by it.  An impossible entry is recorded, so it is not inert.
Inert(e) ==
    LET s == Append(channel, e)
        C == Counted(channel)
    IN  /\ e.kind \in RoundKinds
        /\ Possible(s, Len(s), C)
        /\ \/ e.kind \in {"closed", "submitted"} /\ VoteIdx(s, C, "closed", e.round) # 0
           \/ /\ e.kind \in {"closed", "share", "failed", "done"}
              /\ \E i \in CIdx(s, C, e.kind, e.round) : s[i].sender = e.sender

Post(e) == channel' = IF Inert(e) THEN channel ELSE Append(channel, e)

\* The malicious party's counted Submitted of round r carries this update.
MalUpdate(m, r) ==
    LET I == {i \in CIdx(channel, Counted(channel), "submitted", r) :
                channel[i].sender = m}
    IN  IF I = {} THEN "none" ELSE channel[Min(I)].what

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
(* (our digest of G(r) for rounds done), failedRounds the rounds we decided *)
(* failed, accused the <<round, party>> digest faults we posted; pending is *)
(* the round of a checkpoint whose RoundDone may be unposted, 0 for none;  *)
(* the "applied" field of PartyState is HasApplied below.                  *)
(***************************************************************************)
Fresh(round, digests, pending) ==
    [round |-> round, digests |-> digests, pending |-> pending,
     failedRounds |-> {}, accused |-> {},
     prepared |-> FALSE, submitPosted |-> FALSE, closePosted |-> FALSE,
     deadlinePassed |-> FALSE, verified |-> FALSE, accepted |-> {},
     rejected |-> {}, rejectionsPosted |-> {}, failurePosted |-> FALSE,
     summed |-> FALSE, sharePosted |-> FALSE, shareVerdicts |-> << >>,
     sharesDeadlinePassed |-> FALSE, combinedDone |-> FALSE,
     combined |-> << >>, aggregateFailed |-> FALSE, keyDeadlinePassed |-> FALSE,
     keyOpen |-> NoEpoch, joinPending |-> FALSE, keyPending |-> NoEpoch,
     dkgOn |-> FALSE, dkg |-> NoDkg, requestPending |-> FALSE]

NoCheckpoint == [round |-> 0, digest |-> Genesis]

\* machine.start: at round 1, or after the last checkpointed round.
Start(c) ==
    IF c.round = 0 THEN Fresh(1, {}, 0)
    ELSE Fresh(c.round + 1, {<<c.round, c.digest>>}, c.round)

\* machine._next_round
NextRound(s) ==
    [Fresh(s.round + 1, s.digests, 0) EXCEPT
        !.failedRounds = s.failedRounds, !.accused = s.accused,
        !.keyOpen = s.keyOpen, !.joinPending = s.joinPending,
        !.keyPending = s.keyPending, !.dkgOn = s.dkgOn, !.dkg = s.dkg,
        !.requestPending = s.requestPending]

\* The state kept for a crashed party (model_check keeps None); never read.
DeadState == Start(NoCheckpoint)

DigestOf(s, r) == (CHOOSE x \in s.digests : x[1] = r)[2]

\* Our digest of G(r-1): that of the last round before r that ended Done
\* (a failed round leaves G unchanged), or Genesis.
PrevDigest(s, r) ==
    LET done == {x \in s.digests : x[1] < r} IN
    IF done = {} THEN Genesis
    ELSE (CHOOSE x \in done : \A y \in done : y[1] <= x[1])[2]

HasApplied(p) == \E x \in st[p].digests : x[1] = st[p].round

\* The rounds p finished: Done (a digest) or Failed.
FinishedRounds(p) == {x[1] : x \in st[p].digests} \cup st[p].failedRounds

\* machine.digest_faults: <<r, q>> for each other party q whose RoundDone of a
\* round we finished contradicts our outcome (a round we failed, or our digest).
DigestFaults(p) ==
    LET s == Prefix(p) IN
    {f \in FinishedRounds(p) \X (Parties \ {p}) :
        \E i \in DoneIdx(s, f[1]) :
            /\ s[i].sender = f[2]
            /\ \/ f[1] \in st[p].failedRounds
               \/ s[i].digest # DigestOf(st[p], f[1])}

\* Digest faults whose Rejected p has neither read back nor posted.
UnpostedFaults(p) ==
    {f \in DigestFaults(p) :
        /\ p \in Members(Prefix(p), f[1])
        /\ <<f[2], "digest">> \notin MyRejections(Prefix(p), p, f[1])
        /\ f \notin st[p].accused}

\* machine._check_agreement: max(q, 2) other parties contradict our outcome of
\* a round (we are the odd one out; fewer are named faulty and ignored).
Disagrees(p) ==
    \E r \in FinishedRounds(p) :
        Cardinality({q \in Parties : <<r, q>> \in DigestFaults(p)}) >= Max(Q, 2)

IsRejected(p, target, what) ==
    \/ <<target, what>> \in MyRejections(Prefix(p), p, st[p].round)
    \/ <<target, what>> \in st[p].rejectionsPosted

UnrejectedUpdates(p) == {c \in st[p].rejected : ~IsRejected(p, c, "update")}

\* The first counted share of q for round r anywhere in the channel
\* (model_check._share_verdict looks at the whole channel).
ShareOf(r, q) ==
    channel[CHOOSE i \in ShareIdx(channel, r) : channel[i].sender = q]

\* A share verifies iff its sender is honest and it is a share of *our* sum;
\* the malicious party's iff it posted a valid one.
ShareOk(p, q) ==
    /\ q \notin BadShares
    /\ IF q \in MaliciousParties
       THEN ShareOf(st[p].round, q).what = "valid"
       ELSE ShareOf(st[p].round, q).acc = st[p].accepted

Checked(p) == {v[1] : v \in Range(st[p].shareVerdicts)}

UnrejectedShares(p) ==
    {v[1] : v \in {w \in Range(st[p].shareVerdicts) : ~w[2]}}
        \ {q \in Parties : IsRejected(p, q, "share")}

\* The senders of the shares that count (before the CloseVotes-th RoundFailed).
CountedSenders(p) ==
    LET v == Prefix(p) IN {v[i].sender : i \in CountedShareIdx(v, st[p].round)}

\* The parties whose counted shares verified, in the order they were checked
\* (channel order).
ValidShares(p) ==
    LET IsValid(v) == v[2] /\ v[1] \in CountedSenders(p)
        ok == SelectSeq(st[p].shareVerdicts, IsValid)
    IN  [i \in 1..Len(ok) |-> ok[i][1]]

\* machine.shares_to_combine: exactly the first Needed valid shares in channel
\* order (the caller checks that there are that many).
ShareToCombine(valid) == SubSeq(valid, 1, Needed)

\* Counted shares of our round not yet checked, as channel indices.
UncheckedShares(p) ==
    LET s == Prefix(p) IN
    {i \in CountedShareIdx(s, st[p].round) : s[i].sender \notin Checked(p)}

(***************************************************************************)
(* machine.next_action, as the name of the action.  "WaitCut",            *)
(* "WaitShares" and "WaitKey" are Wait(r, "cut" / "shares" / "key");       *)
(* "WaitOutcome" is Wait(r, "outcome"): our RoundFailed vote is posted and *)
(* the channel decides (no deadline).                                      *)
(* "WaitFollow" is Wait(r, "follow"): a round p is no member of; the      *)
(* members decide, p only reads (no deadline).                             *)
(***************************************************************************)
BeforeCutStep(p) ==      \* machine._before_cut
    LET s == st[p]
        r == s.round
        v == Prefix(p)
    IN  IF p \notin SubmittedIn(v, r) /\ ~s.submitPosted THEN "TrainAndSubmit"
        ELSE IF s.closePosted \/ p \in Closers(v, r) THEN "WaitCut"
        ELSE IF Members(v, r) \subseteq SubmittedIn(v, r) THEN "CloseSubmissions"
        ELSE IF s.deadlinePassed THEN "CloseSubmissions"
        ELSE "WaitCut"

\* machine._decrypt (every party holds a key share).  A party skips its own
\* share only once it has checked Needed valid ones: with Needed counted
\* shares posted it checks them first.
DecryptStep(p) ==
    LET s == st[p]
        r == s.round
        v == Prefix(p)
        member == p \in Members(v, r)
    IN  IF Needed = 0 THEN "Combine"
        ELSE IF member /\ UnrejectedShares(p) # {} THEN "Reject"
        ELSE IF Len(ValidShares(p)) >= Needed THEN "Combine"
        ELSE IF Cardinality(CountedShareIdx(v, r)) >= Needed /\ UncheckedShares(p) # {}
             THEN "CheckShare"
        ELSE IF /\ member /\ ~s.sharePosted /\ p \notin ShareSenders(v, r)
                /\ ~FailedIn(v, r)
             THEN "PostShare"
        ELSE IF UncheckedShares(p) # {} THEN "CheckShare"
        ELSE IF FailedIn(v, r) THEN "FailRound"
        ELSE IF ~member THEN "WaitFollow"
        ELSE IF s.failurePosted \/ p \in Failers(v, r) THEN "WaitOutcome"
        ELSE IF s.sharesDeadlinePassed THEN "FailRound"
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

\* machine._keygen_stuck: our key generation of the epoch cannot go on (our
\* earlier process began it, or a message round never came by our deadline).
KeygenStuck(p) ==
    LET s == st[p]
        e == EpochOf(s.round)
    IN  IF ~s.dkgOn \/ s.dkg[1] # e THEN KeygenPosted(p, e, 0, p)
        ELSE /\ ~\A q \in Parties : KeygenPosted(p, e, s.dkg[2], q)
             /\ s.keyDeadlinePassed

\* machine.lacks_key: p goes without a key for its round.
LacksKey(p) ==
    LET s == st[p]
        e == EpochOf(s.round)
    IN  /\ KeysOn
        /\ s.keyOpen # e
        /\ p \in JoinedIn(Prefix(p))
        /\ \/ DecideKey(p) = "Fail"
           \/ /\ DecideKey(p) = "Deal" /\ Distributed /\ s.keyPending # e
              /\ KeygenStuck(p)

KeygenName(p) ==         \* machine._keygen_action (KeygenStuck ruled out)
    LET s == st[p]
        e == EpochOf(s.round)
    IN  IF ~s.dkgOn \/ s.dkg[1] # e THEN "KeygenStep"
        ELSE IF \A q \in Parties : KeygenPosted(p, e, s.dkg[2], q) THEN "KeygenStep"
        ELSE "WaitKey"

KeyName(p) ==            \* machine._key_action (LacksKey ruled out)
    LET s == st[p]
        d == DecideKey(p)
    IN  IF p \notin JoinedIn(Prefix(p))
        THEN IF s.joinPending THEN "WaitKey" ELSE "Join"
        ELSE IF d = "Open" THEN "OpenKey"
        ELSE IF d = "Deal" /\ s.keyPending = EpochOf(s.round) THEN "WaitKey"
        ELSE IF d = "Deal" /\ Distributed THEN KeygenName(p)
        ELSE IF d = "Deal" THEN "DealKey"
        ELSE "WaitKey"

\* machine._without_key: submit nothing, vote at our deadline, let the cut
\* decide; a cut of q or more we cannot follow (we stop, posting nothing).
NoKeyStep(p) ==
    LET s == st[p]
        r == s.round
        v == Prefix(p)
    IN  IF ~HasCut(v, r)
        THEN IF s.closePosted \/ p \in Closers(v, r) \/ ~s.deadlinePassed
             THEN "WaitCut" ELSE "CloseSubmissions"
        ELSE IF Cardinality(Cut(v, r)) < Q THEN "FailRound"
        ELSE "Halt"

\* machine._candidacy_step: a newcomer posts its request once, stops when it
\* was refused, and otherwise goes on (following until it is a member).
JoinStep(p) ==
    LET v == Prefix(p) IN
    IF p \notin Newcomers THEN "none"
    ELSE IF RequestIdx(v, p) = 0 THEN IF st[p].requestPending THEN "none" ELSE "RequestJoin"
    ELSE IF JoinRefused(v, p) THEN "Halt"
    ELSE "none"

NextName(p) ==           \* machine.next_action
    LET s == st[p]
        r == s.round
        v == Prefix(p)
        member == p \in Members(v, r)
    IN  IF Disagrees(p) THEN "Halt"
        ELSE IF s.pending # 0 /\ p \in Members(v, s.pending) THEN "Announce"
        ELSE IF UnpostedFaults(p) # {} THEN "Reject"
        ELSE IF r > Rounds THEN "Finish"
        ELSE IF JoinStep(p) # "none" THEN JoinStep(p)
        ELSE IF KeysOn /\ s.keyOpen # EpochOf(r)
             THEN IF LacksKey(p) THEN NoKeyStep(p) ELSE KeyName(p)
        ELSE IF ~s.prepared THEN "Prepare"
        ELSE IF ~HasCut(v, r) THEN IF member THEN BeforeCutStep(p) ELSE "WaitFollow"
        ELSE IF ~s.verified THEN "Verify"
        ELSE IF member /\ UnrejectedUpdates(p) # {} THEN "Reject"
        ELSE IF Cardinality(s.accepted) < Q THEN "FailRound"
        ELSE IF Needed > 0 /\ Cardinality(s.accepted) < MinAccepted THEN "FailRound"
        ELSE IF ~s.summed THEN "Sum"
        ELSE IF ~s.combinedDone THEN DecryptStep(p)
        ELSE IF s.aggregateFailed THEN "FailRound"
        ELSE IF ~HasApplied(p) THEN "Apply"
        ELSE IF ~member THEN "Advance"
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
    /\ stopped = [p \in Parties |-> IF p \in MaliciousParties THEN "malicious" ELSE "no"]
    /\ checkpoint = [p \in Parties |-> NoCheckpoint]
    /\ delivered = [p \in Parties |-> 0]
    /\ crashesLeft = MaxCrashes
    /\ malLeft = MaliciousPosts
    /\ applied = {}
    /\ combines = {}
    /\ failed = {}

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
             ELSE IF e.kind = "join" /\ e.sender = p
             THEN [st EXCEPT ![p].requestPending = FALSE]
             ELSE IF /\ e.kind = "key"
                     /\ e.sender = Source(p)
                     /\ e.epoch = st[p].keyPending
             THEN [st EXCEPT ![p].keyPending = NoEpoch]
             ELSE st
    /\ delivered' = [delivered EXCEPT ![p] = @ + 1]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, crashesLeft,
                   malLeft, applied, combines, failed>>

(***************************************************************************)
(* Act(p): p does what next_action names, on the prefix it has read (a     *)
(* real party's view always lags the channel a little), and the result is *)
(* folded back in (machine.apply of Done).                                 *)
(***************************************************************************)
\* What every Act(p) step but FailRound and Combine leaves alone.
Ghosts == <<crashesLeft, malLeft, applied, combines, failed>>

\* A newcomer's JoinRequest (round 0: admission follows the cuts around it).
RequestJoin(p) ==
    /\ Decides(p, "RequestJoin")
    /\ Post(Msg("join", p, 0))
    /\ st' = [st EXCEPT ![p].requestPending = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* A round p is no member of is applied: go on, posting nothing.
Advance(p) ==
    /\ Decides(p, "Advance")
    /\ st' = [st EXCEPT ![p] = NextRound(st[p])]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Key epochs (DESIGN.md section 4): machine._key_action's actions.
Join(p) ==
    /\ Decides(p, "Join")
    /\ Post(KeyMsg("joined", p, 0, 0))
    /\ st' = [st EXCEPT ![p].joinPending = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* A silent dealer decides DealKey but never carries it out.
DealKey(p) ==
    /\ Decides(p, "DealKey")
    /\ ~DealerSilent
    /\ LET e == EpochOf(st[p].round) IN
       /\ Post(KeyMsg("key", p, e, 0))
       /\ st' = [st EXCEPT ![p].keyPending = e]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

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
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

OpenKey(p) ==
    /\ Decides(p, "OpenKey")
    /\ st' = [st EXCEPT ![p].keyOpen = EpochOf(st[p].round),
                         ![p].keyDeadlinePassed = FALSE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

Prepare(p) ==
    /\ Decides(p, "Prepare")
    /\ st' = [st EXCEPT ![p].prepared = TRUE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Training takes time: p is busy until Submit posts its update.
TrainAndSubmit(p) ==
    /\ Decides(p, "TrainAndSubmit")
    /\ training' = [training EXCEPT ![p] = TRUE]
    /\ UNCHANGED <<channel, st, alive, stopped, checkpoint, delivered, Ghosts>>

\* The end of training: Submitted lands in the channel now (maybe after the cut).
Submit(p) ==
    /\ alive[p]
    /\ stopped[p] = "no"
    /\ training[p]
    /\ Post(Msg("submitted", p, st[p].round))
    /\ st' = [st EXCEPT ![p].submitPosted = TRUE]
    /\ training' = [training EXCEPT ![p] = FALSE]
    /\ UNCHANGED <<alive, stopped, checkpoint, delivered, Ghosts>>

\* Our vote: the submit phase closes at the CloseVotes-th distinct one.
CloseSubmissions(p) ==
    /\ Decides(p, "CloseSubmissions")
    /\ Post(Msg("closed", p, st[p].round))
    /\ st' = [st EXCEPT ![p].closePosted = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Verification is deterministic: an update verifies unless it is a bad one
\* (or the malicious party's counted Submitted carries a bad one).
Verify(p) ==
    /\ Decides(p, "Verify")
    /\ LET r   == st[p].round
           cut == Cut(Prefix(p), r)
           bad == {c \in cut : \/ <<c, r>> \in BadUpdates
                               \/ c \in MaliciousParties /\ MalUpdate(c, r) = "bad"}
       IN  st' = [st EXCEPT ![p].verified = TRUE,
                            ![p].accepted = cut \ bad,
                            ![p].rejected = bad]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Post Rejected once for each digest fault (machine.digest_faults, also of a
\* past round), bad update (after Verify) or bad share (while decrypting).
Reject(p) ==
    /\ Decides(p, "Reject")
    /\ IF UnpostedFaults(p) # {}
       THEN LET f == CHOOSE f \in UnpostedFaults(p) : TRUE IN
            /\ Post(RejectMsg(p, f[1], f[2], "digest"))
            /\ st' = [st EXCEPT ![p].accused = @ \cup {f}]
       ELSE LET r      == st[p].round
                upd    == UnrejectedUpdates(p)
                what   == IF upd # {} THEN "update" ELSE "share"
                target == IF upd # {} THEN CHOOSE c \in upd : TRUE
                          ELSE CHOOSE c \in UnrejectedShares(p) : TRUE
            IN  /\ Post(RejectMsg(p, r, target, what))
                /\ st' = [st EXCEPT ![p].rejectionsPosted = @ \cup {<<target, what>>}]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* The round fails: fewer than q accepted, fewer than MinAccepted (encrypted),
\* a decrypted aggregate out of range, a cut we cannot follow without a key,
\* or too few valid shares before the CloseVotes-th RoundFailed.  Post our
\* RoundFailed vote unless it is posted or the round already failed by votes;
\* the round failed (G(r) = G(r-1)) and p goes on with round r+1 -- except at
\* its share deadline, where the vote may land after the t-th valid share, so
\* p waits for the channel to decide (FailRound(decided=False), WaitOutcome).
FailRound(p) ==
    /\ Decides(p, "FailRound")
    /\ LET s    == st[p]
           r    == s.round
           v    == Prefix(p)
           post == /\ p \in Members(v, r)
                   /\ ~FailedIn(v, r) /\ ~s.failurePosted /\ p \notin Failers(v, r)
           vote == s.summed /\ ~s.combinedDone /\ ~FailedIn(v, r)
       IN  /\ IF post THEN Post(Msg("failed", p, r)) ELSE UNCHANGED channel
           /\ IF vote
              THEN /\ st' = [st EXCEPT ![p].failurePosted = TRUE]
                   /\ UNCHANGED failed
              ELSE /\ st' = [st EXCEPT ![p] =
                                NextRound([s EXCEPT !.failedRounds = @ \cup {r}])]
                   /\ failed' = failed \cup {<<p, r>>}
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, crashesLeft,
                   malLeft, applied, combines>>

Sum(p) ==
    /\ Decides(p, "Sum")
    /\ st' = [st EXCEPT ![p].summed = TRUE]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Our decryption share of the sum of our accepted set.
PostShare(p) ==
    /\ Decides(p, "PostShare")
    /\ Post(ShareMsg(p, st[p].round, st[p].accepted))
    /\ st' = [st EXCEPT ![p].sharePosted = TRUE]
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Verify the first counted share (channel order) not yet checked.
CheckShare(p) ==
    /\ Decides(p, "CheckShare")
    /\ LET v == Prefix(p)
           q == v[Min(UncheckedShares(p))].sender
       IN  st' = [st EXCEPT ![p].shareVerdicts = Append(@, <<q, ShareOk(p, q)>>)]
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

\* Decrypt from exactly ShareToCombine of the valid shares (none for plain
\* updates).  An accepted malicious update that verified but overflows takes
\* the aggregate out of range: the round fails (machine: Done(Combine, why)).
Combine(p) ==
    /\ Decides(p, "Combine")
    /\ LET s        == st[p]
           chosen   == IF Needed = 0 THEN << >> ELSE ShareToCombine(ValidShares(p))
           allValid == \A i \in 1..Len(chosen) : ShareOk(p, chosen[i])
           overflow == \E m \in MaliciousParties \cap s.accepted :
                           MalUpdate(m, s.round) = "overflow"
       IN  /\ st' = [st EXCEPT ![p].combinedDone = TRUE, ![p].combined = chosen,
                                ![p].aggregateFailed = overflow]
           /\ combines' = combines \cup {<<p, s.round, chosen, allValid, s.accepted>>}
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, malLeft, applied, failed>>

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
                   malLeft, combines, failed>>

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
    /\ UNCHANGED <<alive, training, stopped, checkpoint, delivered, Ghosts>>

\* max(q, 2) others contradict our outcome, or we cannot follow a round
\* without its key (our key generation was cut off or stalled, or no key came,
\* and the cut holds q or more updates we cannot check).
Halt(p) ==
    /\ Decides(p, "Halt")
    /\ stopped' = [stopped EXCEPT ![p] = "halted"]
    /\ UNCHANGED <<channel, st, alive, training, checkpoint, delivered, Ghosts>>

Act(p) ==
    \/ Submit(p)
    \/ RequestJoin(p)
    \/ Advance(p)
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
(* Admit(p): with Admission = "vote", a live member of the round in       *)
(* progress votes for a newcomer's pending request it has not voted for:  *)
(* a person's decision (zkadapt admit), any time; the machines only count. *)
(***************************************************************************)
Admit(p) ==
    /\ Admission = "vote"
    /\ alive[p] /\ stopped[p] = "no"
    /\ LET C == Counted(channel)
           now == InProgress(channel, C, Len(channel) + 1)
       IN  /\ p \in MembersAt(channel, C, now)
           /\ \E n \in Newcomers :
                /\ RequestIdx(channel, n) # 0
                /\ ApprovalIdx(channel, C, n) = 0
                /\ ~JoinRefused(channel, n)
                /\ ~\E i \in 1..Len(channel) :
                      channel[i].kind = "admit" /\ channel[i].sender = p
                      /\ channel[i].target = n
                /\ Post([Msg("admit", p, 0) EXCEPT !.target = n])
    /\ UNCHANGED <<st, alive, training, stopped, checkpoint, delivered, Ghosts>>

(***************************************************************************)
(* Malicious(m): the malicious party runs no machine.  At any step it may  *)
(* post any message for any round (model_check._malicious_moves): a        *)
(* Submitted with an update that verifies, fails, or overflows; a          *)
(* PhaseClosed or RoundFailed vote, early or late; a share that verifies   *)
(* or not; a RoundDone with a digest some honest party computed or Evil.   *)
(* Its Rejected entries are not generated: a party reads only its own.     *)
(* Each post that changes a view (counted, not inert) spends one of        *)
(* MaliciousPosts; an impossible one is only recorded, and free.           *)
(***************************************************************************)
MaliciousEntries(m, r) ==
    {MalMsg("submitted", m, r, w, Genesis) : w \in {"good", "bad", "overflow"}}
    \cup {Msg("closed", m, r), Msg("failed", m, r)}
    \cup {MalMsg("share", m, r, w, Genesis) : w \in {"valid", "invalid"}}
    \cup {MalMsg("done", m, r, "none", d) :
            d \in {Evil} \cup {a[3] : a \in {b \in applied : b[2] = r}}}

Malicious(m) ==
    /\ m \in MaliciousParties
    /\ malLeft > 0
    /\ \E r \in 1..Rounds, e \in MaliciousEntries(m, r) :
         LET counts == /\ ~Inert(e)
                       /\ Possible(Append(channel, e), Len(channel) + 1,
                                   Counted(channel))
         IN  /\ Post(e)
             /\ malLeft' = IF counts THEN malLeft - 1 ELSE malLeft
    /\ UNCHANGED <<st, alive, training, stopped, checkpoint, delivered,
                   crashesLeft, applied, combines, failed>>

(***************************************************************************)
(* Timeout(p): p's local deadline (submissions, decryption shares, or the  *)
(* key) passes while it waits.  Unfair deadlines may pass any time; fair   *)
(* ones only once p has read the whole channel and every party whose post  *)
(* it waits for is crashed, stopped, malicious (never waited for), without *)
(* a key for the round, or done with the key epoch                         *)
(* (model_check._deadline_may_pass).  WaitOutcome has no deadline.        *)
(***************************************************************************)
Gone(q) == ~alive[q] \/ stopped[q] # "no"

\* model_check._without_key: q submits nothing in round r for want of a key.
NoKeyIn(q, r) ==
    /\ KeysOn
    /\ alive[q]
    /\ st[q].round = r
    /\ st[q].keyOpen # EpochOf(r)
    /\ (DealerSilent /\ q = Dealer) \/ LacksKey(q)

\* model_check._past_epoch: q posts nothing more for round r's key epoch.
PastEpoch(q, r) ==
    /\ alive[q]
    /\ \/ st[q].round > Rounds
       \/ st[q].round > r /\ EpochOf(st[q].round) # EpochOf(r)

DeadlineFair(p) ==
    LET v      == Prefix(p)
        r      == st[p].round
        cut    == NextName(p) = "WaitCut"
        posted == IF cut THEN SubmittedIn(v, r) ELSE ShareSenders(v, r)
    IN  /\ delivered[p] = Len(channel)
        /\ \A q \in Members(v, r) \ posted : Gone(q) \/ (cut /\ NoKeyIn(q, r))

\* model_check._key_deadline_may_pass: nothing p waits for is still to come.
KeyDeadlineFair(p) ==
    LET s       == st[p]
        r       == s.round
        joined  == JoinedIn(channel)
        awaited == Distributed /\ s.dkgOn
    IN  /\ delivered[p] = Len(channel)
        /\ \A q \in Parties :
             LET gone == Gone(q) \/ NoKeyIn(q, r) \/ PastEpoch(q, r) IN
             /\ (q \notin joined => gone)
             /\ (~Distributed /\ q = Dealer /\ q # p /\ ~DealerSilent => gone)
             /\ (awaited /\ ~KeygenPosted(p, s.dkg[1], s.dkg[2], q) => gone)

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
    /\ UNCHANGED <<channel, alive, training, stopped, checkpoint, delivered, Ghosts>>

(***************************************************************************)
(* Crash(p) / Restart(p).  A crash loses everything but the checkpoint; a  *)
(* stopped (or malicious) process does not crash or restart.  A restart is *)
(* machine.start from the checkpoint followed by a replay of the whole     *)
(* channel, which clears the pending announce if our RoundDone did reach  *)
(* the channel, and decides a failed round failed again from the channel. *)
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
    /\ UNCHANGED <<channel, stopped, checkpoint, malLeft, applied, combines, failed>>

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
    /\ UNCHANGED <<channel, training, stopped, checkpoint, Ghosts>>

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
        \/ Admit(p)
        \/ Malicious(p)

\* Every live honest party keeps reading and acting, and a local deadline
\* always passes eventually (clocks advance); FairDeadlines only restricts
\* *when* it may pass (see Timeout).  No fairness on Crash or Restart (a
\* crashed party may stay down for good), nor on Malicious (it owes nobody a
\* step: Progress may not rely on it).
Fairness ==
    \A p \in Honest :
        /\ WF_vars(Deliver(p))
        /\ WF_vars(Act(p))
        /\ WF_vars(Timeout(p))

Spec == Init /\ [][Next]_vars /\ Fairness

(***************************************************************************)
(* Invariants (model_check.agreement / threshold_safety / quorum_safety /  *)
(* min_accepted_safety / honest_blameless).  With a malicious party they   *)
(* are about the honest ones: what it posts or decides is its own.         *)
(***************************************************************************)
DigestType == Seq((0..Rounds) \X SUBSET Parties)

TypeOK ==
    /\ channel \in Seq([kind: Kinds, sender: Parties, round: 0..Rounds,
                        target: Parties, what: Whats, acc: SUBSET Parties,
                        digest: DigestType, epoch: 0..Rounds,
                        step: 0..DkgRounds])
    /\ \A p \in Parties :
         /\ st[p].round \in 1..(Rounds + 1)
         /\ st[p].digests \subseteq (1..Rounds) \X DigestType
         /\ st[p].pending \in 0..Rounds
         /\ st[p].failedRounds \subseteq 1..Rounds
         /\ st[p].accused \subseteq (1..Rounds) \X Parties
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
         /\ st[p].aggregateFailed \in BOOLEAN
         /\ st[p].keyDeadlinePassed \in BOOLEAN
         /\ st[p].keyOpen \in 0..Rounds
         /\ st[p].joinPending \in BOOLEAN
         /\ st[p].keyPending \in 0..Rounds
         /\ st[p].dkgOn \in BOOLEAN
         /\ st[p].dkg \in (0..Rounds) \X (0..DkgRounds)
         /\ st[p].requestPending \in BOOLEAN
    /\ alive \in [Parties -> BOOLEAN]
    /\ training \in [Parties -> BOOLEAN]
    /\ stopped \in [Parties -> {"no", "halted", "malicious"}]
    /\ checkpoint \in [Parties -> [round: 0..Rounds, digest: DigestType]]
    /\ \A p \in Parties : delivered[p] \in 0..Len(channel)
    /\ crashesLeft \in 0..MaxCrashes
    /\ malLeft \in 0..MaliciousPosts
    /\ applied \subseteq Parties \X (1..Rounds) \X DigestType \X (SUBSET Parties)
    /\ combines \subseteq Parties \X (1..Rounds) \X Seq(Parties) \X BOOLEAN
                          \X (SUBSET Parties)
    /\ failed \subseteq Parties \X (1..Rounds)

\* Every party that decides round r decides the same: Done with one digest of
\* G(r) for all, or Failed for all.
Agreement ==
    /\ \A a, b \in applied : a[2] = b[2] => a[3] = b[3]
    /\ \A a \in applied, f \in failed : a[2] # f[2]

\* No sum is decrypted from fewer than t valid shares, and honest decryption
\* shares exist only for sums of at least max(q, 2) updates (so no individual
\* update is ever decrypted).
ThresholdSafety ==
    /\ \A c \in combines : Cardinality(Range(c[3])) >= T /\ c[4]
    /\ \A i \in 1..Len(channel) :
         (channel[i].kind = "share" /\ channel[i].sender \in Honest)
            => Cardinality(channel[i].acc) >= MinSharedSum

\* No round completes with fewer than q accepted updates.
QuorumSafety ==
    \A a \in applied : Cardinality(a[4]) >= Q

\* No honest party posts a decryption share of, or decrypts, the sum of fewer
\* than MinAccepted accepted updates (THREATS.md 2: a coalition that learns the
\* sum of the others' updates learns one update when only one other is in it).
MinAcceptedSafety ==
    T > 0 =>
        /\ \A c \in combines : Cardinality(c[5]) >= MinAccepted
        /\ \A i \in 1..Len(channel) :
             (channel[i].kind = "share" /\ channel[i].sender \in Honest)
                => Cardinality(channel[i].acc) >= MinAccepted

\* No honest party is named faulty by an honest one: every honest entry is
\* counted (no view records it as a violation), and no live honest party
\* finds an honest party's RoundDone contradicting its outcome.
HonestBlameless ==
    /\ \A i \in 1..Len(channel) :
         channel[i].sender \in Honest => i \in Counted(channel)
    /\ \A p \in Honest :
         alive[p] => \A f \in DigestFaults(p) : f[2] \in MaliciousParties

(***************************************************************************)
(* Progress.  model_check.progress checks, in every terminal state (no     *)
(* honest step left: only Crash, Restart and Malicious) with at least      *)
(* max(q, CloseVotes) live honest parties, that every live honest party    *)
(* has finished every round (Done or Failed) and none stopped; the Python  *)
(* graph is acyclic, so every maximal run ends in such a state.  Here:     *)
(* crashes are bounded and every Restart follows a Crash, so Live is       *)
(* eventually constant; if it ends with enough parties to close a phase    *)
(* and fail a decryption without the malicious party's votes, eventually  *)
(* every live honest party is done for good.  (The plain "Cardinality(Live)*)
(* >= Q ~> AllDone" would also hold for the shipped .cfg, but is wrong in  *)
(* general: a crash after the premise held may leave fewer parties, and    *)
(* then nothing promises progress.)  Checked only with FairDeadlines =     *)
(* TRUE: an early deadline may leave a round below quorum.                 *)
(***************************************************************************)
Live == {p \in Honest : alive[p]}

\* A newcomer refused (its request came during the last round) stops: done.
AllDone ==
    \A p \in Live :
        \/ JoinRefused(channel, p)
        \/ /\ stopped[p] = "no"
           /\ st[p].round > Rounds
           /\ st[p].pending = 0 \/ p \notin Members(channel, st[p].pending)

\* The premise counts the listed parties: newcomers may be refused.
Progress == <>[](Cardinality(Live \cap Listed) >= Max(Q, CloseVotes)) => <>[]AllDone

=============================================================================
