"""The web pages' languages: a French and English message catalog and the choice between them.

The language comes, in order, from ``?lang=`` (which also sets the ``lang`` cookie, so that the
switch sticks), the ``lang`` cookie, then ``Accept-Language`` (q-values honoured), then English.
The CLI and the JSON twins stay in English: only the HTML is translated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

__all__ = ["DEFAULT", "LANGS", "Translator", "negotiate"]

LANGS = ("en", "fr")
DEFAULT = "en"

_EN: dict[str, str] = {
    "site": "Liquide",
    "skip": "Skip to the content",
    "nav.home": "Home",
    "nav.assemblies": "Assemblies",
    "nav.areas": "Areas",
    "nav.issues": "Issues",
    "nav.main": "Main",
    "lang.switch": "Langue : français",
    "lang.other": "fr",
    "lang.label": "Language",
    "json": "This page as JSON",
    "footer": "Read-only public pages of this city node. Every figure can be recomputed from the public logs.",
    "home.title": "{origin}",
    "home.lead": "The public log of this city, its peers and what they agree on.",
    "home.log": "The city's log",
    "home.key": "City key",
    "home.size": "Entries",
    "home.checkpoint": "Latest checkpoint",
    "home.checkpoint.none": "No checkpoint signed yet.",
    "home.cp.size": "Size",
    "home.cp.root": "Root",
    "home.cp.time": "Signed",
    "home.cosignatures": "Cosignatures",
    "home.cosignatures.none": "No witness has cosigned this checkpoint yet.",
    "home.logs": "Logs held",
    "home.logs.caption": "The own log and the mirrors of other cities' logs",
    "home.logs.origin": "Origin",
    "home.logs.kind": "Kind",
    "home.logs.own": "own",
    "home.logs.mirror": "mirror",
    "home.logs.frozen": "frozen: {reason}",
    "home.logs.ok": "ok",
    "home.peers": "Peers",
    "home.peers.none": "No peer is configured.",
    "home.peers.url": "Peer",
    "home.peers.status": "Sync status",
    "home.peers.last": "Last success",
    "home.peers.lag": "Lag",
    "home.peers.ok": "in sync",
    "home.peers.behind": "behind",
    "home.peers.error": "error",
    "home.peers.never": "never synced",
    "home.peers.lag.entries": "{n} entries",
    "home.peers.lag.none": "none",
    "home.proofs": "Proofs of misbehaviour",
    "home.proofs.none": "No proof of misbehaviour is known: every log this node holds is consistent.",
    "home.proofs.lead": "This node holds {n} proof(s) that a log lied. Anyone can check them: they are signed by the city at fault.",
    "home.proofs.kind": "Kind",
    "home.proofs.origin": "City at fault",
    "home.proofs.time": "Received",
    "home.stats": "At a glance",
    "home.stats.sealed": "sealed",
    "home.stats.enrolled": "Enrolled citizens",
    "assemblies.title": "Assemblies",
    "assemblies.lead": "The bodies this city belongs to, each with its member cities and witnesses.",
    "assemblies.none": "No assembly is defined or joined here.",
    "assemblies.members": "Member cities",
    "assemblies.witnesses": "Witnesses ({k} cosignatures required)",
    "assemblies.areas": "Areas of this assembly",
    "assemblies.grace": "Grace period: {grace}",
    "areas.title": "Areas",
    "areas.none": "No area is known here.",
    "areas.assembly": "Assembly",
    "areas.issues": "Issues of this area",
    "issues.title": "Issues",
    "issues.none": "No issue matches.",
    "issues.filter": "Filter",
    "issues.state": "State",
    "issues.state.any": "any",
    "issues.apply": "Show",
    "issues.window": "Voting window",
    "issues.col.title": "Issue",
    "issues.col.state": "State",
    "issues.more": "Next page",
    "state.upcoming": "upcoming",
    "state.open": "open for voting",
    "state.closed": "closed, awaiting the seal",
    "state.sealed": "sealed",
    "issue.options": "Options",
    "issue.window": "Voting window",
    "issue.window.value": "from {opens} to {closes}",
    "issue.status": "Status",
    "issue.area": "Area",
    "issue.assembly": "Assembly",
    "issue.counts": "{ballots} ballots and {delegations} issue delegations",
    "issue.policy": "Delegation rule {rule}; Schulze with {strength} defeat strength and {tie} tie-breaking",
    "issue.policy.label": "Counting rules",
    "issue.received": "Received here",
    "issue.notyet": "The results appear here once the issue is sealed.",
    "issue.unavailable": "The tally is not available on this node yet: {reason}",
    "issue.results": "Results",
    "issue.winner": "Winner: {title}",
    "issue.nowinner": "No option won: the status quo stands.",
    "issue.ranking": "Schulze ranking",
    "issue.ranking.caption": "Options in Schulze order, with approvals and disapprovals",
    "issue.ranking.svg": "Approvals and disapprovals per option",
    "issue.ranking.desc": "For each option, a green bar to the right for the weight that approves it and a red bar to the left for the weight that disapproves it.",
    "issue.col.rank": "Rank",
    "issue.col.option": "Option",
    "issue.col.for": "For",
    "issue.col.against": "Against",
    "issue.col.direct": "Direct majority",
    "issue.col.indirect": "Indirect majority",
    "issue.col.sq": "Beats the status quo",
    "issue.statusquo": "status quo",
    "issue.statusquo.rank": "The status quo is at Schulze rank {rank}.",
    "issue.votes": "{n} votes",
    "issue.yes": "yes",
    "issue.no": "no",
    "issue.winner.badge": "winner",
    "issue.digest": "Result digest",
    "issue.record": "Record",
    "issue.voters": "{direct} voted directly, {delegated} delegated, {lost} lost, {absent} absent",
    "issue.attestations": "Attestations",
    "issue.attestations.lead": "Every node that holds the record recomputes the tally and signs the digest it found.",
    "issue.attestations.none": "No node has attested this record yet.",
    "issue.att.node": "Node",
    "issue.att.digest": "Digest",
    "issue.att.agreement": "Agreement",
    "issue.att.agrees": "agrees",
    "issue.att.disagrees": "DISAGREES",
    "issue.att.pending": "not yet attested",
    "issue.att.summary.ok": "All {n} attestations agree with this node's tally.",
    "issue.att.summary.bad": "{bad} of {n} attestations disagree with this node's tally.",
    "issue.flow": "Who carried the weight",
    "issue.flow.lead": "The casting voters who carry the most weight, with the weight delegated to them per scope.",
    "issue.flow.svg": "Weight of the heaviest casting voters by origin",
    "issue.flow.desc": "One bar per casting voter: their own vote, then the weight delegated to them per assembly, per area and per issue.",
    "issue.flow.none": "Nobody voted.",
    "issue.flow.voter": "Casting voter",
    "issue.flow.total": "Weight",
    "issue.flow.others": "{n} other casting voters carry {weight}.",
    "scope.own": "own vote",
    "scope.assembly": "assembly delegations",
    "scope.area": "area delegations",
    "scope.issue": "issue delegations",
    "scope.assembly.one": "assembly",
    "scope.area.one": "area",
    "scope.issue.one": "issue",
    "explain.title": "Explain a voter",
    "explain.lead": "Paste a public key to see where that voter's weight went.",
    "explain.label": "Public key (lqpk1…)",
    "explain.submit": "Explain",
    "explain.heading": "How {voter} was counted",
    "explain.direct": "Voted directly and cast a weight of {weight}.",
    "explain.direct.override": "Voted directly and cast a weight of {weight}; the ballot overrides their own {scope} delegation.",
    "explain.delegated": "Delegated at {scope} scope; the weight {weight} travelled along this path:",
    "explain.lost.cycle": "The delegation is lost: the chain of trustees comes back on itself without reaching anyone who voted.",
    "explain.lost.dead_end": "The delegation is lost: it ends at someone who neither voted nor delegated.",
    "explain.absent": "Did not vote and has no effective delegation for this issue.",
    "explain.absent.blocked": "Did not vote, and an empty {scope} delegation blocks every broader one.",
    "explain.unknown": "{voter} is not in the electorate of this issue.",
    "explain.badkey": "{voter} is not a public key (it should start with lqpk1).",
    "explain.notsealed": "The issue is not sealed yet: there is nothing to explain.",
    "explain.back": "Back to the issue",
    "explain.path": "Delegation path",
    "voter.title": "Voter {short}",
    "voter.key": "Public key",
    "voter.enrolled": "Enrolled here",
    "voter.enrolled.yes": "yes (registrar reference {ref}, entry {index})",
    "voter.enrolled.no": "no",
    "voter.head": "Chain head",
    "voter.delegations": "Public delegations",
    "voter.delegations.none": "No delegation.",
    "voter.col.scope": "Scope",
    "voter.col.target": "For",
    "voter.col.trustees": "Trustees, in order",
    "voter.blocks": "none (blocks broader scopes)",
    "voter.explanations": "Explanation per sealed issue",
    "voter.explanations.none": "No sealed issue counts this voter yet.",
    "voter.ballots": "Ballots",
    "voter.ballots.none": "No ballot.",
    "voter.notfound": "This key is not known here.",
    "error.title": "Not found",
    "error.lead": "{message}",
    "time.never": "never",
    "time.ago": "{n} s ago",
}

_FR: dict[str, str] = {
    "site": "Liquide",
    "skip": "Aller au contenu",
    "nav.home": "Accueil",
    "nav.assemblies": "Assemblées",
    "nav.areas": "Domaines",
    "nav.issues": "Questions",
    "nav.main": "Principale",
    "lang.switch": "Language: English",
    "lang.other": "en",
    "lang.label": "Langue",
    "json": "Cette page en JSON",
    "footer": "Pages publiques en lecture seule de ce nœud municipal. Chaque chiffre se recalcule à partir des journaux publics.",
    "home.title": "{origin}",
    "home.lead": "Le journal public de cette ville, ses pairs et ce sur quoi ils s’accordent.",
    "home.log": "Le journal de la ville",
    "home.key": "Clé de la ville",
    "home.size": "Entrées",
    "home.checkpoint": "Dernier point de contrôle",
    "home.checkpoint.none": "Aucun point de contrôle signé pour l’instant.",
    "home.cp.size": "Taille",
    "home.cp.root": "Racine",
    "home.cp.time": "Signé",
    "home.cosignatures": "Cosignatures",
    "home.cosignatures.none": "Aucun témoin n’a encore cosigné ce point de contrôle.",
    "home.logs": "Journaux détenus",
    "home.logs.caption": "Le journal propre et les miroirs des journaux des autres villes",
    "home.logs.origin": "Origine",
    "home.logs.kind": "Nature",
    "home.logs.own": "propre",
    "home.logs.mirror": "miroir",
    "home.logs.frozen": "gelé : {reason}",
    "home.logs.ok": "ok",
    "home.peers": "Pairs",
    "home.peers.none": "Aucun pair n’est configuré.",
    "home.peers.url": "Pair",
    "home.peers.status": "Synchronisation",
    "home.peers.last": "Dernier succès",
    "home.peers.lag": "Retard",
    "home.peers.ok": "à jour",
    "home.peers.behind": "en retard",
    "home.peers.error": "erreur",
    "home.peers.never": "jamais synchronisé",
    "home.peers.lag.entries": "{n} entrées",
    "home.peers.lag.none": "aucun",
    "home.proofs": "Preuves de malveillance",
    "home.proofs.none": "Aucune preuve de malveillance connue : chaque journal détenu ici est cohérent.",
    "home.proofs.lead": "Ce nœud détient {n} preuve(s) qu’un journal a menti. Chacun peut les vérifier : elles sont signées par la ville fautive.",
    "home.proofs.kind": "Nature",
    "home.proofs.origin": "Ville fautive",
    "home.proofs.time": "Reçue",
    "home.stats": "En bref",
    "home.stats.sealed": "scellées",
    "home.stats.enrolled": "Citoyens inscrits",
    "assemblies.title": "Assemblées",
    "assemblies.lead": "Les instances dont cette ville est membre, avec leurs villes membres et leurs témoins.",
    "assemblies.none": "Aucune assemblée n’est définie ou rejointe ici.",
    "assemblies.members": "Villes membres",
    "assemblies.witnesses": "Témoins ({k} cosignatures requises)",
    "assemblies.areas": "Domaines de cette assemblée",
    "assemblies.grace": "Délai de grâce : {grace}",
    "areas.title": "Domaines",
    "areas.none": "Aucun domaine n’est connu ici.",
    "areas.assembly": "Assemblée",
    "areas.issues": "Questions de ce domaine",
    "issues.title": "Questions",
    "issues.none": "Aucune question ne correspond.",
    "issues.filter": "Filtrer",
    "issues.state": "État",
    "issues.state.any": "tous",
    "issues.apply": "Afficher",
    "issues.window": "Période de vote",
    "issues.col.title": "Question",
    "issues.col.state": "État",
    "issues.more": "Page suivante",
    "state.upcoming": "à venir",
    "state.open": "vote ouvert",
    "state.closed": "close, en attente du scellement",
    "state.sealed": "scellée",
    "issue.options": "Options",
    "issue.window": "Période de vote",
    "issue.window.value": "du {opens} au {closes}",
    "issue.status": "État",
    "issue.area": "Domaine",
    "issue.assembly": "Assemblée",
    "issue.counts": "{ballots} bulletins et {delegations} délégations sur la question",
    "issue.policy": "Règle de délégation {rule} ; Schulze avec force de défaite {strength} et départage {tie}",
    "issue.policy.label": "Règles de décompte",
    "issue.received": "Reçus ici",
    "issue.notyet": "Les résultats paraissent ici une fois la question scellée.",
    "issue.unavailable": "Le décompte n’est pas encore disponible sur ce nœud : {reason}",
    "issue.results": "Résultats",
    "issue.winner": "Gagnante : {title}",
    "issue.nowinner": "Aucune option ne l’emporte : le statu quo demeure.",
    "issue.ranking": "Classement de Schulze",
    "issue.ranking.caption": "Les options dans l’ordre de Schulze, avec approbations et désapprobations",
    "issue.ranking.svg": "Approbations et désapprobations par option",
    "issue.ranking.desc": "Pour chaque option, une barre verte vers la droite pour le poids qui l’approuve et une barre rouge vers la gauche pour le poids qui la désapprouve.",
    "issue.col.rank": "Rang",
    "issue.col.option": "Option",
    "issue.col.for": "Pour",
    "issue.col.against": "Contre",
    "issue.col.direct": "Majorité directe",
    "issue.col.indirect": "Majorité indirecte",
    "issue.col.sq": "Bat le statu quo",
    "issue.statusquo": "statu quo",
    "issue.statusquo.rank": "Le statu quo est au rang de Schulze {rank}.",
    "issue.votes": "{n} voix",
    "issue.yes": "oui",
    "issue.no": "non",
    "issue.winner.badge": "gagnante",
    "issue.digest": "Empreinte du résultat",
    "issue.record": "Registre",
    "issue.voters": "{direct} ont voté directement, {delegated} ont délégué, {lost} voix perdues, {absent} absents",
    "issue.attestations": "Attestations",
    "issue.attestations.lead": "Chaque nœud qui détient le registre recalcule le décompte et signe l’empreinte obtenue.",
    "issue.attestations.none": "Aucun nœud n’a encore attesté ce registre.",
    "issue.att.node": "Nœud",
    "issue.att.digest": "Empreinte",
    "issue.att.agreement": "Accord",
    "issue.att.agrees": "d’accord",
    "issue.att.disagrees": "DÉSACCORD",
    "issue.att.pending": "pas encore attesté",
    "issue.att.summary.ok": "Les {n} attestations concordent avec le décompte de ce nœud.",
    "issue.att.summary.bad": "{bad} attestation(s) sur {n} contredisent le décompte de ce nœud.",
    "issue.flow": "Qui a porté les voix",
    "issue.flow.lead": "Les votants qui portent le plus de poids, avec le poids qui leur a été délégué par portée.",
    "issue.flow.svg": "Poids des votants les plus lourds selon leur provenance",
    "issue.flow.desc": "Une barre par votant : sa propre voix, puis le poids qui lui a été délégué par assemblée, par domaine et par question.",
    "issue.flow.none": "Personne n’a voté.",
    "issue.flow.voter": "Votant",
    "issue.flow.total": "Poids",
    "issue.flow.others": "{n} autres votants portent {weight}.",
    "scope.own": "voix propre",
    "scope.assembly": "délégations d’assemblée",
    "scope.area": "délégations de domaine",
    "scope.issue": "délégations de question",
    "scope.assembly.one": "assemblée",
    "scope.area.one": "domaine",
    "scope.issue.one": "question",
    "explain.title": "Expliquer un votant",
    "explain.lead": "Collez une clé publique pour voir où est allé le poids de ce votant.",
    "explain.label": "Clé publique (lqpk1…)",
    "explain.submit": "Expliquer",
    "explain.heading": "Comment {voter} a été compté",
    "explain.direct": "A voté directement avec un poids de {weight}.",
    "explain.direct.override": "A voté directement avec un poids de {weight} ; le bulletin remplace sa propre délégation de portée {scope}.",
    "explain.delegated": "A délégué à la portée {scope} ; le poids {weight} a suivi ce chemin :",
    "explain.lost.cycle": "La délégation est perdue : la chaîne des délégataires revient sur elle-même sans atteindre personne qui ait voté.",
    "explain.lost.dead_end": "La délégation est perdue : elle aboutit à quelqu’un qui n’a ni voté ni délégué.",
    "explain.absent": "N’a pas voté et n’a aucune délégation effective pour cette question.",
    "explain.absent.blocked": "N’a pas voté, et une délégation vide de portée {scope} bloque toute délégation plus large.",
    "explain.unknown": "{voter} ne fait pas partie du corps électoral de cette question.",
    "explain.badkey": "{voter} n’est pas une clé publique (elle commence par lqpk1).",
    "explain.notsealed": "La question n’est pas encore scellée : il n’y a rien à expliquer.",
    "explain.back": "Retour à la question",
    "explain.path": "Chemin de délégation",
    "voter.title": "Votant {short}",
    "voter.key": "Clé publique",
    "voter.enrolled": "Inscrit ici",
    "voter.enrolled.yes": "oui (référence d’inscription {ref}, entrée {index})",
    "voter.enrolled.no": "non",
    "voter.head": "Tête de chaîne",
    "voter.delegations": "Délégations publiques",
    "voter.delegations.none": "Aucune délégation.",
    "voter.col.scope": "Portée",
    "voter.col.target": "Pour",
    "voter.col.trustees": "Délégataires, dans l’ordre",
    "voter.blocks": "aucun (bloque les portées plus larges)",
    "voter.explanations": "Explication par question scellée",
    "voter.explanations.none": "Aucune question scellée ne compte encore ce votant.",
    "voter.ballots": "Bulletins",
    "voter.ballots.none": "Aucun bulletin.",
    "voter.notfound": "Cette clé n’est pas connue ici.",
    "error.title": "Introuvable",
    "error.lead": "{message}",
    "time.never": "jamais",
    "time.ago": "il y a {n} s",
}

CATALOG: Mapping[str, Mapping[str, str]] = {"en": _EN, "fr": _FR}


class Translator:
    """Messages, numbers and times in one language."""

    __slots__ = ("lang", "messages")

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in CATALOG else DEFAULT
        self.messages = CATALOG[self.lang]

    def __call__(self, key: str, **values: object) -> str:
        """The message ``key`` with ``{name}`` placeholders filled in (KeyError if unknown)."""
        text = self.messages[key]
        return text.format(**values) if values else text

    def num(self, n: int) -> str:
        """``n`` with thousands separators (a narrow no-break space in French)."""
        text = f"{n:,}"
        return text.replace(",", "\u202f") if self.lang == "fr" else text

    def time(self, t: int | None) -> str:
        """A Unix time as ``YYYY-MM-DD HH:MM UTC``."""
        if t is None:
            return self("time.never")
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _accept_language(header: str) -> str | None:
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate(header.split(",")):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0]
        if primary not in CATALOG or q <= 0:
            continue
        cand = (q, -pos, primary)
        if best is None or cand > best:
            best = cand
    return None if best is None else best[2]


def negotiate(query: str | None, cookie: str | None, accept: str | None) -> tuple[str, bool]:
    """Choose the page language; return ``(lang, set_cookie)``.

    ``set_cookie`` is True when ``?lang=`` chose a supported language (the caller stores it).
    """
    if query in CATALOG:
        return str(query), True
    if cookie in CATALOG:
        return str(cookie), False
    if accept:
        found = _accept_language(accept)
        if found is not None:
            return found, False
    return DEFAULT, False
