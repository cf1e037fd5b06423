/*
 * Per-principal catalog tokens for LakehouseCatalogServer (governance on); see the class.
 */
package org.apache.iceberg.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.SupportsNamespaces;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.Table;
import org.apache.iceberg.exceptions.CommitFailedException;
import org.apache.iceberg.exceptions.NoSuchNamespaceException;
import org.apache.iceberg.exceptions.NoSuchTableException;

/**
 * Per-principal catalog tokens (governance on). The file lakehouse writes from the policy
 * (lakehouse/governance/catalog_access.py) maps the SHA-256 (hex) of each principal token's
 * "Bearer <token>" header to the principal, whether it is an admin, the namespaces and
 * tables it may see and the tables it may load (those it may read whole). The file is
 * re-read when it changes (one stat per principal request); a file that does not parse
 * keeps the previous rules (and says so on stderr); no file means no principal tokens.
 * A principal's token reads, and appends to tables it holds INSERT on and may read whole
 * (CatalogAppends): listings are filtered, everything else is refused with 403
 * ForbiddenException naming the principal and what it lacks.
 */
final class CatalogPrincipalRules {
  static final String FILE_VARIABLE = "LAKEHOUSE_CATALOG_ACCESS_FILE";
  static final String AUDIT_VARIABLE = "LAKEHOUSE_CATALOG_AUDIT_DIR";
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path file;
  private final Catalog catalog;
  private final Path auditDir; // null: decisions are not recorded
  private Object seen; // the attributes of the file last read
  private volatile Map<String, Principal> byDigest = Map.of();

  record Principal(String name, boolean admin, Set<String> namespaces, Set<String> tables,
      Set<String> readable, Set<String> appendable) {}

  CatalogPrincipalRules(Path file, Catalog catalog, Path auditDir) {
    this.file = file;
    this.catalog = catalog;
    this.auditDir = auditDir;
  }

  /**
   * Writes the decision on ``request`` (``refusal``: null or "" served, else refused) as one
   * JSON file in the audit directory (written aside, then renamed: a reader never sees half
   * of one); lakehouse moves them into lakehouse_audit.access_log. The config is not a
   * decision. False when the file could not be written.
   */
  private boolean audit(Principal who, HttpServletRequest request, String refusal) {
    String[] parts = request.getRequestURI().substring(1).split("/", -1);
    if (auditDir == null || (parts.length == 2 && "config".equals(parts[1]))) {
      return true;
    }
    ObjectNode event = JSON.createObjectNode()
        .put("time", Instant.now().truncatedTo(ChronoUnit.MILLIS).toString())
        .put("principal", who.name()).put("action", action(request.getMethod(), parts))
        .put("resource", resource(parts)).put("allowed", refusal == null || refusal.isEmpty())
        .put("reason", refusal == null || refusal.isEmpty() ? null : refusal);
    String name = UUID.randomUUID().toString();
    try {
      Files.createDirectories(auditDir);
      Path staging = auditDir.resolve("." + name + ".tmp");
      Files.writeString(staging, event.toString());
      Files.move(staging, auditDir.resolve(name + ".json"), StandardCopyOption.ATOMIC_MOVE);
      return true;
    } catch (IOException | RuntimeException e) {
      System.err.println("cannot record a catalog decision in " + auditDir + ": " + e);
      return false;
    }
  }

  /** The Iceberg REST operation a request asks for (its method and path when unknown). */
  private static String action(String method, String[] parts) {
    boolean tables = parts.length > 3 && "tables".equals(parts[3]);
    String shape = parts.length < 2 || !"namespaces".equals(parts[1]) ? ""
        : parts.length == 2 ? "namespaces" : parts.length == 3 ? "namespace"
        : tables && parts.length == 4 ? "tables" : tables && parts.length == 5 ? "table" : "";
    return switch (method + " " + shape) {
      case "GET namespaces" -> "LIST_NAMESPACES";
      case "POST namespaces" -> "CREATE_NAMESPACE";
      case "GET namespace", "HEAD namespace" -> "LOAD_NAMESPACE";
      case "DELETE namespace" -> "DROP_NAMESPACE";
      case "GET tables" -> "LIST_TABLES";
      case "POST tables" -> "CREATE_TABLE";
      case "GET table" -> "LOAD_TABLE";
      case "HEAD table" -> "TABLE_EXISTS";
      case "POST table" -> "COMMIT_TABLE";
      case "DELETE table" -> "DROP_TABLE";
      default -> method + " /" + String.join("/", parts);
    };
  }

  /** The table (``ns.table``) or namespace a request names, else "catalog". */
  private static String resource(String[] parts) {
    try {
      if (parts.length < 3 || !"namespaces".equals(parts[1])) {
        return "catalog";
      }
      String ns = String.join(".", RESTUtil.decodeNamespace(parts[2]).levels());
      boolean table = parts.length >= 5 && "tables".equals(parts[3]);
      return table ? ns + "." + RESTUtil.decodeString(parts[4]) : ns;
    } catch (RuntimeException e) {
      return "catalog";
    }
  }

  /** The principal whose token has this header digest, under the file's current rules. */
  Principal principal(byte[] headerDigest) {
    if (headerDigest == null) {
      return null;
    }
    reloadIfChanged();
    return byDigest.get(HexFormat.of().formatHex(headerDigest));
  }

  private synchronized void reloadIfChanged() {
    Object now;
    try {
      BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
      now = List.of(a.lastModifiedTime(), a.creationTime(), a.size(), String.valueOf(a.fileKey()));
    } catch (NoSuchFileException e) {
      now = "missing";
    } catch (IOException e) {
      System.err.println("catalog access file " + file + " unreadable (rules kept): " + e);
      return;
    }
    if (now.equals(seen)) {
      return;
    }
    seen = now;
    if ("missing".equals(now)) {
      byDigest = Map.of();
      return;
    }
    try {
      byDigest = parse(JSON.readTree(Files.readAllBytes(file)));
    } catch (IOException | RuntimeException e) {
      System.err.println("catalog access file " + file + " not applied (the previous rules stay): " + e);
    }
  }

  private static Map<String, Principal> parse(JsonNode document) {
    Map<String, Principal> found = new HashMap<>();
    JsonNode principals = document.get("principals");
    if (principals == null || !principals.isArray()) {
      throw new IllegalArgumentException("no \"principals\" list");
    }
    for (JsonNode entry : principals) {
      String name = entry.get("name").asText();
      found.put(entry.get("digest").asText(), new Principal(name, entry.path("admin").asBoolean(false),
          names(entry, "namespaces"), names(entry, "tables"), names(entry, "readable"),
          names(entry, "appendable")));
    }
    return Map.copyOf(found);
  }

  private static Set<String> names(JsonNode entry, String field) {
    Set<String> found = new HashSet<>();
    entry.path(field).forEach(node -> found.add(node.asText()));
    return Set.copyOf(found);
  }

  /** Answers ``request`` as ``who`` may: passes it on, lists what it sees, or refuses. */
  void serve(Principal who, HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (who.admin()) {
      chain.doFilter(request, response);
      return;
    }
    TableIdentifier appendTo = appendTarget(who, request);
    if (appendTo != null) {
      serveAppend(who, appendTo, request, response);
      return;
    }
    String refusal;
    try {
      refusal = decide(who, request, response);
    } catch (NoSuchNamespaceException e) {
      LakehouseCatalogServer.TokenFilter.reply(response, 404, error(e.getMessage(), "NoSuchNamespaceException", 404));
      return;
    } catch (IllegalArgumentException e) {
      refusal = other(who);
    }
    if (!audit(who, request, refusal) && !response.isCommitted()) {
      notRecorded(who, response);
      return;
    }
    if (refusal == null) {
      chain.doFilter(request, response);
    } else if (!refusal.isEmpty()) {
      // One line per refusal in the catalog's log (`lakehouse logs catalog`).
      System.err.println("refused " + request.getMethod() + " " + request.getRequestURI() + ": " + refusal);
      LakehouseCatalogServer.TokenFilter.reply(response, 403, error(refusal, "ForbiddenException", 403));
    }
  }

  private void notRecorded(Principal who, HttpServletResponse response) throws IOException {
    response.reset();
    LakehouseCatalogServer.TokenFilter.reply(response, 503, error(who.name() + "'s request was not served:"
        + " its decision could not be recorded in the audit spool " + auditDir + " (see the catalog's log)."
        + " Hint: free disk space or fix the permissions of the lake house home.",
        "ServiceUnavailableException", 503));
  }

  /** The table of a commit ``who`` may append to (INSERT and read whole), else null. */
  private static TableIdentifier appendTarget(Principal who, HttpServletRequest request) {
    String[] parts = request.getRequestURI().substring(1).split("/", -1);
    if (!"POST".equals(request.getMethod()) || parts.length != 5 || !"v1".equals(parts[0])
        || !"namespaces".equals(parts[1]) || !"tables".equals(parts[3])) {
      return null;
    }
    try {
      TableIdentifier id = TableIdentifier.of(RESTUtil.decodeNamespace(parts[2]), RESTUtil.decodeString(parts[4]));
      String name = String.join(".", id.namespace().levels()) + "." + id.name();
      return who.appendable().contains(name) ? id : null;
    } catch (RuntimeException e) {
      return null;
    }
  }

  /** Checks a commit as an append (CatalogAppends), records the decision, then applies it. */
  private void serveAppend(Principal who, TableIdentifier id, HttpServletRequest request,
      HttpServletResponse response) throws IOException {
    String name = String.join(".", id.namespace().levels()) + "." + id.name();
    Table table;
    try {
      table = catalog.loadTable(id);
    } catch (NoSuchTableException e) {
      LakehouseCatalogServer.TokenFilter.reply(response, 404, error(e.getMessage(), "NoSuchTableException", 404));
      return;
    }
    String body = new String(request.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    CatalogAppends.Verdict verdict;
    try {
      verdict = CatalogAppends.check(table, who.name(), name, body);
    } catch (RuntimeException e) { // a manifest list or manifest that does not parse
      verdict = new CatalogAppends.Verdict(null, 400, "BadRequestException",
          "The append to " + name + " could not be checked: " + e.getMessage());
    }
    if (!audit(who, request, verdict.checked() == null ? verdict.message() : null)) {
      notRecorded(who, response);
      return;
    }
    if (verdict.checked() == null) {
      System.err.println("refused POST " + request.getRequestURI() + ": " + verdict.message());
      LakehouseCatalogServer.TokenFilter.reply(response, verdict.status(),
          error(verdict.message(), verdict.type(), verdict.status()));
      return;
    }
    try {
      LakehouseCatalogServer.TokenFilter.reply(response, 200, CatalogAppends.apply(verdict.checked()));
    } catch (CommitFailedException e) {
      LakehouseCatalogServer.TokenFilter.reply(response, 409, error(e.getMessage(), "CommitFailedException", 409));
    } catch (RuntimeException e) { // e.g. a data file Iceberg's append refuses
      LakehouseCatalogServer.TokenFilter.reply(response, 400,
          error("The append to " + name + " failed: " + e.getMessage(), "BadRequestException", 400));
    }
  }

  /** null: pass the request on; "": answered here; else the refusal's message. */
  private String decide(Principal who, HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    String method = request.getMethod();
    String[] parts = request.getRequestURI().substring(1).split("/", -1);
    int size = parts.length;
    if (size < 2 || !"v1".equals(parts[0])) {
      return other(who);
    }
    if (size == 2 && "config".equals(parts[1])) {
      return "GET".equals(method) ? null : refuseWrite(who, "change the catalog's config", "the admin's");
    }
    if ("tables".equals(parts[1]) || "views".equals(parts[1])) {
      return refuseWrite(who, "rename tables or views", "ALTER");
    }
    if ("transactions".equals(parts[1])) {
      return refuseWrite(who, "commit a transaction", "INSERT");
    }
    if (!"namespaces".equals(parts[1])) {
      return other(who);
    }
    if (size == 2) {
      if (!"GET".equals(method)) {
        return refuseWrite(who, "create namespaces", "the admin's");
      }
      listNamespaces(who, request.getParameter("parent"), response);
      return "";
    }
    Namespace namespace = RESTUtil.decodeNamespace(parts[2]);
    String ns = String.join(".", namespace.levels());
    if (!who.namespaces().contains(ns)) {
      return who.name() + " may not see the namespace " + ns + ": it holds no grant there."
          + " Hint: an admin can grant it, e.g. `lakehouse grant DESCRIBE ON ALL TABLES IN " + ns
          + " TO " + who.name() + "`.";
    }
    return size == 3 ? namespaceRequest(who, method, ns) : inNamespace(who, method, parts, namespace, response);
  }

  private String namespaceRequest(Principal who, String method, String ns) {
    boolean reading = "GET".equals(method) || "HEAD".equals(method);
    return reading ? null : refuseWrite(who, "drop or change the namespace " + ns, "DROP/ALTER on " + ns);
  }

  private String inNamespace(Principal who, String method, String[] parts, Namespace namespace,
      HttpServletResponse response) throws IOException {
    String ns = String.join(".", namespace.levels());
    String kind = parts[3];
    if ("views".equals(kind)) {
      return refuseWrite(who, "use views in " + ns, "views are the admin's");
    }
    if (parts.length == 4 && "tables".equals(kind) && "GET".equals(method)) {
      listTables(who, namespace, response);
      return "";
    }
    if (parts.length == 4 && ("tables".equals(kind) || "register".equals(kind))) {
      return refuseWrite(who, "create a table in " + ns, "CREATE_TABLE on " + ns);
    }
    if (!"tables".equals(kind) || parts.length > 6) {
      return other(who);
    }
    String table = ns + "." + RESTUtil.decodeString(parts[4]);
    if (parts.length == 6) {
      boolean metrics = "metrics".equals(parts[5]) && "POST".equals(method);
      return metrics ? loadable(who, table) : other(who);
    }
    return switch (method) {
      case "GET" -> loadable(who, table);
      case "HEAD" -> who.tables().contains(table) ? null : invisible(who, table);
      case "DELETE" -> refuseWrite(who, "drop the table " + table, "DROP on " + table);
      default -> refuseWrite(who, "commit to the table " + table, "INSERT on " + table
          + ", with SELECT on the whole table, for an append; ALTER for anything else");
    };
  }

  private static String loadable(Principal who, String table) {
    if (who.readable().contains(table)) {
      return null;
    }
    if (!who.tables().contains(table)) {
      return invisible(who, table);
    }
    return who.name() + " may not load the table " + table + " from the catalog: loading hands out its"
        + " metadata and file locations, which takes SELECT on the whole table (every row and column,"
        + " unmasked, no row filter). Hint: query it through an engine, which applies the policy"
        + " (`lakehouse query --as " + who.name() + "`).";
  }

  private static String invisible(Principal who, String table) {
    return who.name() + " may not see the table " + table + ": it holds neither DESCRIBE nor SELECT on it."
        + " Hint: an admin can grant it (`lakehouse grant SELECT ON TABLE " + table + " TO " + who.name()
        + "`); `lakehouse grants --principal " + who.name() + "` lists what it holds.";
  }

  private static String other(Principal who) {
    return who.name() + " may not send this request to the catalog: a principal's catalog token reads"
        + " the config, lists namespaces and tables, loads tables and appends, nothing else."
        + " Hint: `lakehouse logs catalog` shows the request refused; the admin's token does the rest.";
  }

  private static String refuseWrite(Principal who, String what, String permission) {
    return who.name() + " may not " + what + " through the catalog (" + permission + "): a principal's"
        + " catalog token reads, and appends where it may. Hint: write as " + who.name()
        + " through lakehouse (`lakehouse ingest --as " + who.name() + "`), which applies the policy"
        + " and records the write in the audit log.";
  }

  private void listNamespaces(Principal who, String parent, HttpServletResponse response) throws IOException {
    Namespace under = parent == null || parent.isEmpty()
        ? Namespace.empty() : Namespace.of(RESTUtil.NAMESPACE_SPLITTER.splitToList(parent).toArray(new String[0]));
    ArrayNode shown = JSON.createArrayNode();
    for (Namespace namespace : ((SupportsNamespaces) catalog).listNamespaces(under)) {
      if (who.namespaces().contains(String.join(".", namespace.levels()))) {
        ArrayNode levels = shown.addArray();
        for (String level : namespace.levels()) {
          levels.add(level);
        }
      }
    }
    LakehouseCatalogServer.TokenFilter.reply(response, 200, JSON.createObjectNode().set("namespaces", shown).toString());
  }

  private void listTables(Principal who, Namespace namespace, HttpServletResponse response) throws IOException {
    ArrayNode shown = JSON.createArrayNode();
    for (TableIdentifier id : catalog.listTables(namespace)) {
      if (who.tables().contains(String.join(".", id.namespace().levels()) + "." + id.name())) {
        ObjectNode entry = shown.addObject();
        ArrayNode levels = entry.putArray("namespace");
        for (String level : id.namespace().levels()) {
          levels.add(level);
        }
        entry.put("name", id.name());
      }
    }
    LakehouseCatalogServer.TokenFilter.reply(response, 200, JSON.createObjectNode().set("identifiers", shown).toString());
  }

  private static String error(String message, String type, int code) {
    ObjectNode error = JSON.createObjectNode();
    error.putObject("error").put("message", message).put("type", type).put("code", code);
    return error.toString();
  }
}
