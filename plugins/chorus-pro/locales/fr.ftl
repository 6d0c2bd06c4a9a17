# Traduction française du plugin Chorus Pro.
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation de Chorus Pro et de PISTE (compte technique, structure, raccordement).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance Chorus Pro.
active = Chorus Pro actif
    .description = Indique si les factures sont transmises. Désactivez-le pour suspendre la transmission : les dépôts déjà effectués restent suivis.
oauth_url = URL OAuth
    .description = Le point d'accès de jeton de PISTE, /api/oauth/token sur sandbox-oauth.piste.gouv.fr pour le bac à sable, sur oauth.piste.gouv.fr pour la production.
api_url = URL de l'API
    .description = Racine de l'API Chorus Pro sur PISTE, sans /cpro : l'hôte sandbox-api.piste.gouv.fr pour le bac à sable, api.piste.gouv.fr pour la production. Elle doit appartenir au même environnement que l'URL OAuth.
environment = Environnement
    .description = À renseigner seulement quand les URL ne sont pas celles de la passerelle PISTE (un proxy, un émulateur local) : indique si elles mènent au bac à sable ou à la production, ce qui fixe les quotas. Avec les URL de PISTE, laissez ce champ vide : l'environnement en est déduit.
    .choice-sandbox = Bac à sable (qualification)
    .choice-production = Production
client_id = Identifiant client
    .description = L'identifiant client (client id) de votre application sur PISTE (piste.gouv.fr, « Applications »), abonnée à l'API Chorus Pro. Les applications du bac à sable et de production sont distinctes.
client_secret = Secret client
    .description = Le secret client (client secret) de cette même application PISTE.
technical_login = Identifiant du compte technique
    .description = Identifiant du compte technique Chorus Pro (Chorus Pro, « Raccordement EDI / API »), envoyé à chaque appel dans l'en-tête cpro-account.
technical_password = Mot de passe du compte technique
    .description = Mot de passe du compte technique Chorus Pro. Il expire périodiquement : renouvelez-le dans Chorus Pro et collez ici le nouveau.
structure_id = Identifiant de la structure
    .description = Identifiant de la structure fournisseur à laquelle le compte technique est rattaché, en général son SIRET (14 chiffres).
structure_id_type = Type d'identifiant de la structure
    .description = La nature de l'identifiant ci-dessus, telle que Chorus Pro la nomme.
    .choice-SIRET = SIRET (établissement français)
    .choice-UE_HORS_FRANCE = Numéro de TVA (UE, hors France)
    .choice-HORS_UE = Hors UE
    .choice-RIDET = RIDET (Nouvelle-Calédonie)
    .choice-TAHITI = Numéro TAHITI (Polynésie française)
    .choice-AUTRE = Autre
    .choice-PARTICULIER = Particulier
accepted_codes = Codes de dématérialisation acceptés
    .description = Seules les factures portant l'un de ces codes sont transmises ; les autres sont refusées avant tout envoi.
erp_user = Utilisateur technique de l'ERP
    .description = L'utilisateur de l'ERP au nom duquel le connecteur transmet les factures.
erp_password = Mot de passe de l'utilisateur technique de l'ERP
    .description = Mot de passe de l'utilisateur technique de l'ERP.
erp_company = Code société de l'ERP
    .description = Code de la société de l'ERP dont cette instance transmet les factures ; il est enregistré avec chaque dépôt.
attempts = Tentatives
    .description = Nombre de tentatives successives d'un appel qui échoue pour une raison passagère (pas de connexion, HTTP 429 ou 503). Un dépôt n'est renvoyé que si la réponse de Chorus Pro prouve qu'il n'a pas été enregistré.
retry_delay_secs = Délai entre deux tentatives (secondes)
    .description = Temps d'attente avant de réessayer ; 0 réessaie aussitôt. Un en-tête Retry-After de la passerelle l'emporte.
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de chaque réponse de Chorus Pro ; le dépôt de fichiers volumineux demande davantage.
follow_interval_secs = Intervalle de suivi (secondes)
    .description = Fréquence à laquelle la tâche follow_deposits interroge Chorus Pro sur les dépôts encore en cours.
follow_start_delay_secs = Délai avant le premier suivi (secondes)
    .description = Temps écoulé après le démarrage de l'hôte avant la première exécution de la tâche follow_deposits.

## Test de connexion

step-check-configuration = Vérifier la configuration
step-get-token = Obtenir un jeton
step-reach-api = Joindre l'API
step-check-technical-account-and-structure = Vérifier le compte technique et la structure
step-check-attachment = Vérifier le dépôt de pièce jointe
step-run-test-routine = Exécuter le test

# Résumé d'un test réussi ; les variables entre accolades viennent du test.
summary-ok = Chorus Pro ({ $environment }) prêt : structure { $structure } ({ $name }) jointe avec le compte technique { $login }
