# Traduction française du plugin plateforme agréée (norme AFNOR XP Z12-013).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# réforme de la facturation électronique (plateforme agréée, annuaire, cycle de vie).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance de plateforme agréée.
active = Transmission active
    .description = Indique si les factures et les réponses de l'acheteur sont envoyées. Désactivez-la pour suspendre l'envoi : les factures reçues continuent d'être collectées et les factures envoyées d'être suivies.
environment = Environnement
    .description = Indique si les URL ci-dessous mènent au bac à sable de la plateforme ou à sa production. Les identifiants de production et du bac à sable ne peuvent pas être partagés entre instances.
    .choice-sandbox = Bac à sable
    .choice-sandbox-description = Bac à sable : factures de test, sans valeur légale.
    .choice-production = Production
    .choice-production-description = Production : factures ayant valeur légale, envoyées à de vrais clients.
siren = SIREN de l'entreprise
    .description = Le SIREN (9 chiffres) de l'entreprise pour laquelle cette instance envoie et reçoit ; il doit être inscrit à l'annuaire avec cette plateforme.
flow_url = URL du service Flow
    .description = URL de base du service Flow XP Z12-013 de la plateforme, sans /v1, par exemple `https://api.flow.example-pa.fr/flow-service`.
directory_url = URL du service Directory
    .description = URL de base du service Directory (annuaire) XP Z12-013 de la plateforme, sans /v1.
token_url = URL du jeton OAuth2
    .description = Le point d'accès de jeton OAuth2 de la plateforme (flux client credentials).
client_id = Identifiant client
    .description = L'identifiant client OAuth2 que la plateforme a attribué à votre entreprise pour son API.
client_secret = Secret client
    .description = Le secret client OAuth2 de ce même client.
scope = Portée OAuth2
    .description = Seulement si la plateforme en demande une ; sinon, laissez ce champ vide.
requests_per_second = Requêtes par seconde
    .description = Nombre maximal de requêtes d'API par seconde envoyées par cette instance (l'hôte met les autres en file d'attente).
attempts = Tentatives
    .description = Nombre d'essais d'un appel quand la plateforme est indisponible (de 1 à 10). Une soumission n'est renvoyée que si la plateforme prouve qu'elle ne l'a pas prise en compte.
retry_delay_secs = Délai entre deux tentatives (secondes)
timeout_secs = Délai d'attente (secondes)
    .description = Durée maximale pendant laquelle une requête attend la plateforme (de 5 à 300).
follow_interval_secs = Intervalle de suivi (secondes)
    .description = Fréquence de lecture du cycle de vie des factures envoyées (de 60 s à 1 jour).
follow_start_delay_secs = Délai avant le premier suivi (secondes)
collect_interval_secs = Intervalle de collecte (secondes)
    .description = Fréquence de collecte des factures fournisseurs reçues (de 60 s à 1 jour).
collect_start_delay_secs = Délai avant la première collecte (secondes)

## Test de connexion

step-check-configuration = Vérifier la configuration
step-get-token = Obtenir un jeton
step-reach-flow-service = Joindre le service Flow
step-reach-directory-service = Joindre le service Directory
step-find-the-company-in-the-directory = Trouver l'entreprise dans l'annuaire
step-run-test-routine = Exécuter le test

# Résumé d'un test réussi ; les variables entre accolades viennent du test.
summary-ok = Plateforme agréée ({ $environment }) prête pour { $siren } ({ $name })
