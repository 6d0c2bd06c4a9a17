# Les textes de la console web en français.
#
# Chaque entrée a le même identifiant dans chaque langue (host/locales/<lang>/console.ftl) ;
# un test vérifie que les deux fichiers ont les mêmes identifiants et variables. Les entrées
# dont l'identifiant finit par `-html` contiennent du balisage ; la console échappe leurs
# { $variables } avant de les placer. Typographie : espace insécable avant « : ; ? ! ».

## Cadre de page

skip-to-content = Aller au contenu
nav-label = Principal
nav-instances = Instances
nav-plugins = Plugins
nav-audit = Historique
nav-webhooks = Webhooks
signed-in-as = Connecté en tant que { $user }
sign-out = Se déconnecter
language-label = Langue
colon = { "\u00A0:" }
list-or = ou

## Textes affichés par le script (%s marque l'endroit où il place sa valeur)

js-saving = Enregistrement…
js-clearing = Effacement…
js-saved = Enregistré.
js-cleared = Effacé.
js-server-answered = Le serveur a répondu { $status }. Rechargez la page et réessayez.
js-unreachable = Le serveur est injoignable ({ $error }).
js-testing = Test en cours…
js-testing-unsaved = Test avec { $count } valeur(s) non enregistrée(s)…
js-session-ended = Votre session a pris fin : rechargez la page et reconnectez-vous.
js-form-expired = Cette page a expiré ou ne vient pas de cette console : rechargez-la et réessayez.

## Erreurs

error-title = Erreur
back-to-instances = Retour aux instances
not-found-title = Page introuvable
not-found-body-html = <h1>Page introuvable</h1><p><a href="/instances">Aller aux instances</a></p>
refused-title = Refusé
refused-body-html = <h1>Refusé</h1><p class="problem" role="alert">Ce formulaire a expiré ou ne vient pas de cette console. Revenez en arrière, rechargez la page et réessayez.</p>
status-bad-request = Requête incorrecte
status-forbidden = Accès refusé
status-not-found = Introuvable
status-conflict = Conflit
status-unprocessable = Valeur refusée
status-too-many-requests = Trop de requêtes
status-server-error = Erreur interne du serveur
error-with-detail = { $lead } Détail (en anglais) : { $detail }
error-stale-revision = Quelqu'un d'autre a modifié cette instance entre-temps ; rechargez la page et réessayez.
error-not-found = Introuvable.
error-already-exists = Une instance porte déjà cet identifiant.
error-invalid-id = Cet identifiant d'instance n'est pas valide.
error-invalid-value = Cette valeur est refusée.
error-invalid-configuration = La configuration est incomplète ou invalide.
error-unknown-plugin = Ce plugin n'est pas chargé.
error-instance-disabled = Cette instance est désactivée.
error-rate-limited = Trop de requêtes ; patientez un instant et réessayez.
error-provider = Le fournisseur n'a pas répondu comme prévu.
error-internal = Erreur interne ; le journal du serveur donne les détails.
error-other = La requête a été refusée.

## Connexion

login-title = Connexion
login-user-name = Nom d'utilisateur
login-password = Mot de passe
login-submit = Se connecter
login-hint-html = Le compte <code>admin</code> est créé au premier démarrage ; changez son mot de passe avec <code>passerelle admin set-password</code>.
login-not-understood = Le formulaire de connexion n'a pas été compris ; réessayez.
login-expired = Ce formulaire de connexion a expiré ou ne vient pas de ce site ; reconnectez-vous.
login-rate-limited = Trop d'échecs de connexion. Attendez { $seconds } secondes et réessayez.
login-wrong = Nom d'utilisateur ou mot de passe incorrect.
failed-sign-ins-html = { $count ->
        [one] { $count } tentative de connexion échouée
       *[other] { $count } tentatives de connexion échouées
    } pour <code>{ $user }</code> depuis la connexion précédente, depuis { $addresses }. Si ce n'était pas vous, assurez-vous que le mot de passe est long et unique (<code>passerelle admin set-password</code>).

## Plugins

plugins-title = Plugins
plugins-none-html = Aucun plugin n'est chargé. Placez les bibliothèques de plugins dans un répertoire de plugins (voir <code>passerelle --help</code>) et redémarrez.
plugins-loaded = Plugins chargés
plugins-unsigned = Non signé
plugins-none-refused = Aucun fichier n'a été refusé.
plugins-refused = Fichiers refusés
plugins-recent-changes = Changements récents de plugins

## Colonnes des tableaux

col-id = Identifiant
col-name = Nom
col-version = Version
col-category = Catégorie
col-capabilities = Capacités
col-plugin-api = API de plugin
col-file = Fichier
col-signed-by = Signé par
col-reason = Motif
col-instance = Instance
col-plugin = Plugin
col-status = État
col-last-test = Dernier test
col-revision = Révision
col-step = Étape
col-time = Durée
col-detail = Détail
col-when = Date
col-who = Auteur
col-what = Action
col-field = Champ
col-change = Modification

## États

status-ok = OK
status-warning = Avertissement
status-failed = Échec
status-skipped = Ignoré
instance-enabled = Activée
instance-disabled = Désactivée

## Instances

instances-title = Instances
instances-none = Aucune instance pour l'instant. Créez-en une ci-dessous.
instances-configured = Instances configurées
instances-not-tested = Jamais testée
create-title = Créer une instance
create-no-plugin = Aucun plugin n'est chargé : aucune instance ne peut être créée.
create-id = Identifiant de l'instance
create-id-hint-html = Lettres minuscules, chiffres, « - » ou « _ », par exemple <code>sirene-prod</code>.
create-plugin = Plugin
create-submit = Créer

## Une instance

instance-crumbs-html = <a href="/instances">Instances</a> › { $id }
instance-subtitle-html = { $name } · plugin <code>{ $plugin }</code>
instance-fix-first = À corriger d'abord
instance-state = État de l'instance
instance-revision-html = révision <span id="revision">{ $revision }</span>
instance-enable = Activer
instance-disable = Désactiver
test-button = Tester
test-heading = Test
test-never-html = Jamais testée. <strong>Tester</strong> vérifie la connexion avec les valeurs de cette page, enregistrées ou non.
test-unsaved-note = (avec des valeurs non enregistrées ; non conservé)
test-steps = Étapes du test
config-heading = Configuration
config-intro-html = Chaque champ s'enregistre séparément avec son bouton <strong>Enregistrer</strong>. Les secrets ne sont jamais affichés : seulement s'ils sont définis.
history-heading = Changements récents
history-none = Aucun changement enregistré pour l'instant.
history-full = Historique complet de { $id }
delete-heading = Supprimer
delete-confirm = Supprimer l'instance { $id } et ses valeurs enregistrées ?
delete-button = Supprimer cette instance

## Champs

form-settings = Paramètres
field-required = obligatoire
field-save = Enregistrer
field-clear = Effacer
field-reset = Revenir à la valeur par défaut
field-choose = — choisir —
field-one-per-line = Une valeur par ligne.
field-condition-html = Utilisé lorsque <em>{ $tag }</em> vaut <em>{ $values }</em>.
field-secret-placeholder-set = défini — saisissez une nouvelle valeur pour le remplacer
field-secret-placeholder-unset = non défini
field-secret-empty = saisissez d'abord la nouvelle valeur ; pour supprimer celle enregistrée, utilisez Effacer
field-unknown = ce plugin n'a pas de tel champ
state-set = défini
state-unset = non défini
state-saved = enregistré
state-default = par défaut
value-on = activé
value-off = désactivé
input-not-integer = un nombre entier est attendu, reçu { $typed }
input-not-number = un nombre est attendu, reçu { $typed }
input-not-on-off = activé ou désactivé attendu, reçu { $typed }
input-not-a-choice = choisissez parmi : { $choices }
input-not-json = du JSON est attendu : { $detail }
field-error-minimum = { $typed } est inférieur au minimum de { $minimum }
field-error-maximum = { $typed } est supérieur au maximum de { $maximum }
field-error-required = ce champ est obligatoire
field-error-url = une URL complète est attendue, par exemple https://example.com/chemin
field-error-other = Valeur refusée. Détail (en anglais) : { $detail }

## Historique

audit-title = Historique
audit-all = Toutes
audit-show = Afficher
audit-none = Aucun changement enregistré.
audit-caption = Changements, du plus récent au plus ancien

## Actions et valeurs de l'historique

action-instance-create = Instance créée
action-field-set = Champ modifié
action-field-clear = Champ effacé
action-instance-enable = Instance activée
action-instance-disable = Instance désactivée
action-instance-delete = Instance supprimée
action-instance-test = Test lancé
action-token-create = Jeton d'API créé
action-token-revoke = Jeton d'API révoqué
action-set-password = Mot de passe changé
audit-default = (par défaut) { $value }
audit-unset = (non défini)
audit-secret-changed = modifié
audit-secret-cleared = effacé
audit-created = plugin { $plugin }
audit-deleted = plugin { $plugin }, révision { $revision }
audit-test = { $status } ; { $what }
audit-test-saved = valeurs enregistrées
audit-test-unsaved = valeurs non enregistrées de : { $fields }

## Webhooks page
webhooks-title = Webhooks
webhooks-intro = Les événements (signatures terminées, statuts de factures, tests en échec…) sont envoyés à ces adresses en POST HTTP signés, renvoyés pendant trois jours en cas d'échec. Le README explique comment l'ERP vérifie la signature.
webhooks-none = Aucun webhook pour le moment.
webhooks-caption-webhooks = Webhooks
webhooks-col-id = Identifiant
webhooks-col-url = Adresse
webhooks-col-events = Événements
webhooks-col-actions = Actions
webhooks-test = Envoyer un test
webhooks-remove = Supprimer
webhooks-add-title = Ajouter un webhook
webhooks-url-label = Adresse du récepteur de l'ERP
webhooks-events-label = Événements
webhooks-events-hint = * pour tous les événements, ou des types séparés par des virgules :
webhooks-secret-label = Secret de signature
webhooks-secret-hint = 16 caractères au moins, par exemple tirés de openssl rand -hex 32. Gardez-en une copie pour le récepteur : il n'est plus jamais affiché.
webhooks-add = Ajouter
webhooks-caption-deliveries = Envois récents, du plus récent au plus ancien
webhooks-no-delivery = Aucun envoi pour le moment.
webhooks-col-event = Événement
webhooks-col-type = Type
webhooks-col-instance = Instance
webhooks-col-webhook = Webhook
webhooks-col-state = État
webhooks-col-attempts = Tentatives
webhooks-col-last = Dernière réponse
webhooks-replay = Renvoyer
webhooks-state-pending = en attente
webhooks-state-delivered = livré
webhooks-state-failed = abandonné
webhooks-ping-ok = Test livré
webhooks-ping-failed = Test non livré
webhooks-replayed = Remis en file
webhooks-error = Refusé
