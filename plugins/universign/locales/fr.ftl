# Traduction française du plugin Universign (signature électronique).
# Identifiants : voir docs/writing-a-plugin.md (« Traductions ») ; vocabulaire de la
# documentation d'Universign (transaction, signataire, plateforme de test).

## Formulaire de configuration

config-schema = Configuration
    .description = Paramètres d'une instance Universign.
enabled = Activer la signature électronique
    .description = Indique si les devis et bons de livraison peuvent être envoyés en signature par cette instance. Désactivée, les nouvelles demandes sont refusées et la tâche de relève ne fait rien ; les transactions déjà enregistrées restent consultables.
url = URL Universign
    .description = Le point d'accès XML-RPC de l'API signataire d'Universign : production `https://ws.universign.eu/sign/rpc/` ou plateforme de test `https://sign.test.cryptolog.com/sign/rpc/`.
user = Utilisateur Universign
    .description = L'identifiant (adresse e-mail) du compte Universign qui demande les signatures.
password = Mot de passe Universign
    .description = Le mot de passe de ce compte Universign, envoyé en authentification HTTP Basic.
erp_user = Utilisateur technique de l'ERP
    .description = Le compte de l'ERP sous lequel les documents signés sont réécrits dans l'ERP. Utilisé par le côté ERP de l'intégration, pas pour appeler Universign.
erp_password = Mot de passe de l'utilisateur technique de l'ERP
    .description = Le mot de passe de l'utilisateur technique de l'ERP.
poll_interval_secs = Intervalle de relève des signatures (secondes)
    .description = Fréquence de vérification des transactions en attente et de récupération des documents signés. 21600 par défaut (6 heures) ; une valeur inférieure à 300 est acceptée mais signalée par le test de connexion, car elle charge le service d'Universign pour peu de bénéfice.
poll_start_delay_secs = Délai avant la première relève (secondes)
    .description = Temps écoulé après le démarrage de l'hôte avant la première vérification.
timeout_secs = Délai d'attente (secondes)
    .description = Durée d'attente maximale de chaque réponse d'Universign. Le téléchargement des documents signés peut prendre un certain temps.

## Test de connexion

step-check-configuration = Vérifier la configuration
step-reach-universign = Joindre Universign
step-authenticate = S'authentifier
step-electronic-signature = Signature électronique
step-pending-transactions = Transactions en attente
step-signature-retrieval-interval = Intervalle de relève des signatures
step-run-test-routine = Exécuter le test

# Résumé d'un test réussi ; les variables entre accolades viennent du test.
summary-ok = Universign à { $url } a accepté l'utilisateur « { $user } »
