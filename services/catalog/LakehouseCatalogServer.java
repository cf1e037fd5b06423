/*
 * Starts Apache Iceberg's REST catalog fixture (the code apache/iceberg-rest-fixture
 * runs) on a chosen address. RESTCatalogServer.main always binds 0.0.0.0 and sets
 * SO_REUSEPORT, which would expose the catalog to the network and let a second
 * server share the port silently; this launcher wires the same adapter and servlet
 * onto a connector bound to REST_HOST (default 127.0.0.1) without port reuse.
 * Configuration is unchanged: CATALOG_* variables, REST_PORT.
 *
 * Every loadTable re-read the table's metadata.json from S3 (about 4 of the 6 ms a
 * load took, paid by every query of every engine). Metadata files are immutable and
 * named uniquely, so the catalog's FileIO is wrapped in MetadataCache, which keeps
 * them by location (bounded, least recently used first out); the current location
 * still comes from the catalog database on every load, so no reader sees stale data.
 *
 * Every request must carry "Authorization: Bearer <LAKEHOUSE_CATALOG_TOKEN>" (TokenFilter),
 * except GET /healthz; otherwise any local process could create and drop tables. With
 * governance on, LAKEHOUSE_CATALOG_ACCESS_FILE names the principals' tokens (by digest) and
 * what each may see and load (PrincipalRules, re-read when the file changes); a principal's
 * token only reads: anything else is 403 ForbiddenException naming the principal.
 *
 * The SQLite catalog database runs in WAL mode and its WAL is checkpointed (TRUNCATE)
 * every LAKEHOUSE_CATALOG_CHECKPOINT_SECONDS and at shutdown by WalCheckpointer, so
 * catalog.db alone holds the catalog and the WAL stays small.
 */
package org.apache.iceberg.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.SupportsNamespaces;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.exceptions.NoSuchNamespaceException;
import org.apache.iceberg.inmemory.InMemoryInputFile;
import org.apache.iceberg.io.DelegateFileIO;
import org.apache.iceberg.io.FileInfo;
import org.apache.iceberg.io.InputFile;
import org.apache.iceberg.io.OutputFile;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.relocated.com.google.common.collect.Maps;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public final class LakehouseCatalogServer {
  private LakehouseCatalogServer() {}

  public static void main(String[] args) throws Exception {
    String token = System.getenv().getOrDefault(TokenFilter.TOKEN_VARIABLE, "");
    if (token.isEmpty()) {
      System.err.println(TokenFilter.TOKEN_VARIABLE + " is not set: refusing to serve the catalog without a token.");
      System.exit(2);
    }
    Map<String, String> config = Maps.newHashMap(RCKUtils.environmentCatalogConfig());
    config.putIfAbsent(CatalogProperties_CATALOG_IMPL, JdbcCatalog.class.getName());
    config.putIfAbsent("jdbc.schema-version", "V1");
    config.put(MetadataCache.DELEGATE, config.getOrDefault("io-impl", "org.apache.iceberg.aws.s3.S3FileIO"));
    config.put("io-impl", MetadataCache.class.getName());
    // Never hand the catalog's own S3 key out with a table (RESTServerCatalogAdapter would):
    // a principal reads files with its own key.
    config.put("include-credentials", "false");
    String name = config.getOrDefault("catalog.name", "rest_backend");
    Catalog catalog = buildCatalog(name, config);
    RESTCatalogServer.CatalogContext context = new RESTCatalogServer.CatalogContext(catalog, config);

    ServletContextHandler handler = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    handler.addServlet(new ServletHolder(new RESTCatalogServlet(new RESTServerCatalogAdapter(context))), "/*");
    String accessFile = System.getenv().getOrDefault(PrincipalRules.FILE_VARIABLE, "");
    PrincipalRules rules = accessFile.isEmpty() ? null : new PrincipalRules(Path.of(accessFile), catalog);
    handler.addFilter(new FilterHolder(new TokenFilter(token, rules)), "/*", EnumSet.of(DispatcherType.REQUEST));
    handler.insertHandler(new GzipHandler());
    WalCheckpointer checkpointer = WalCheckpointer.start(
        config.getOrDefault("uri", ""), catalog instanceof AutoCloseable closeable ? closeable : () -> {});

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(System.getenv().getOrDefault("REST_HOST", "127.0.0.1"));
    connector.setPort(Integer.parseInt(System.getenv().getOrDefault("REST_PORT", "8181")));
    connector.setReuseAddress(true);
    server.addConnector(connector);
    server.setHandler(handler);
    server.setStopAtShutdown(true);
    server.start();
    server.join();
    if (checkpointer != null) {
      checkpointer.close();
    }
  }

  private static final String CatalogProperties_CATALOG_IMPL = "catalog-impl";
  private static final String INIT_CATALOG_TABLES = "jdbc.init-catalog-tables";

  /**
   * The catalog, its tables created by a first instance that is closed at once. JdbcCatalog's
   * table initialization leaves a read transaction open on its pooled connection for good
   * (measured: no checkpoint could reset the WAL afterwards, and one that did made the next
   * commit fail with SQLITE_BUSY_SNAPSHOT), so the serving instance skips it.
   */
  private static Catalog buildCatalog(String name, Map<String, String> config) throws Exception {
    if (config.getOrDefault("uri", "").startsWith("jdbc:sqlite:")
        && !"false".equals(config.get(INIT_CATALOG_TABLES))) {
      Catalog initializer = CatalogUtil.buildIcebergCatalog(name, config, new Configuration());
      if (initializer instanceof AutoCloseable closeable) {
        closeable.close();
      }
      config = Maps.newHashMap(config);
      config.put(INIT_CATALOG_TABLES, "false");
    }
    return CatalogUtil.buildIcebergCatalog(name, config, new Configuration());
  }

  /** 401 in the Iceberg REST error shape unless the request carries the stack's bearer token. */
  static final class TokenFilter implements Filter {
    static final String TOKEN_VARIABLE = "LAKEHOUSE_CATALOG_TOKEN";
    static final String HEALTH_PATH = "/healthz";
    private final byte[] expectedDigest;
    private final PrincipalRules rules;

    TokenFilter(String token, PrincipalRules rules) {
      expectedDigest = sha256("Bearer " + token);
      this.rules = rules;
    }

    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
        throws IOException, ServletException {
      HttpServletRequest request = (HttpServletRequest) req;
      HttpServletResponse response = (HttpServletResponse) res;
      if (HEALTH_PATH.equals(request.getRequestURI()) && "GET".equals(request.getMethod())) {
        reply(response, HttpServletResponse.SC_OK, "{\"status\":\"ok\"}");
        return;
      }
      String given = request.getHeader("Authorization");
      // Digests of equal length, compared in constant time: neither the token's
      // content nor its length leaks through response timing.
      byte[] givenDigest = given == null ? null : sha256(given.strip());
      if (givenDigest != null && MessageDigest.isEqual(expectedDigest, givenDigest)) {
        chain.doFilter(req, res);
        return;
      }
      PrincipalRules.Principal principal = rules == null ? null : rules.principal(givenDigest);
      if (principal != null) {
        rules.serve(principal, request, response, chain);
        return;
      }
      String problem = given == null ? "no Authorization header" : "a wrong bearer token";
      response.setHeader("WWW-Authenticate", "Bearer realm=\"lakehouse catalog\"");
      reply(response, HttpServletResponse.SC_UNAUTHORIZED,
          "{\"error\":{\"message\":\"The lakehouse catalog requires the stack's bearer token; the request had "
              + problem + ".\",\"type\":\"NotAuthorizedException\",\"code\":401}}");
    }

    static void reply(HttpServletResponse response, int status, String json) throws IOException {
      response.setStatus(status);
      response.setContentType("application/json");
      response.setCharacterEncoding("UTF-8");
      response.getWriter().write(json);
    }

    static byte[] sha256(String text) {
      try {
        return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /**
   * Per-principal catalog tokens (governance on). The file lakehouse writes from the policy
   * (lakehouse/governance/catalog_access.py) maps the SHA-256 (hex) of each principal token's
   * "Bearer <token>" header to the principal, whether it is an admin, the namespaces and
   * tables it may see and the tables it may load (those it may read whole). The file is
   * re-read when it changes (one stat per principal request); a file that does not parse
   * keeps the previous rules (and says so on stderr); no file means no principal tokens.
   * A principal's token only reads: listings are filtered, everything else is refused with
   * 403 ForbiddenException naming the principal and what it lacks.
   */
  static final class PrincipalRules {
    static final String FILE_VARIABLE = "LAKEHOUSE_CATALOG_ACCESS_FILE";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final Catalog catalog;
    private Object seen; // the attributes of the file last read
    private volatile Map<String, Principal> byDigest = Map.of();

    record Principal(String name, boolean admin, Set<String> namespaces, Set<String> tables,
        Set<String> readable) {}

    PrincipalRules(Path file, Catalog catalog) {
      this.file = file;
      this.catalog = catalog;
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
            names(entry, "namespaces"), names(entry, "tables"), names(entry, "readable")));
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
      String refusal;
      try {
        refusal = decide(who, request, response);
      } catch (NoSuchNamespaceException e) {
        TokenFilter.reply(response, 404, error(e.getMessage(), "NoSuchNamespaceException", 404));
        return;
      } catch (IllegalArgumentException e) {
        refusal = who.name() + " may not send this catalog request (" + e.getMessage() + ").";
      }
      if (refusal == null) {
        chain.doFilter(request, response);
      } else if (!refusal.isEmpty()) {
        // One line per refusal in the catalog's log (`lakehouse logs catalog`).
        System.err.println("refused " + request.getMethod() + " " + request.getRequestURI() + ": " + refusal);
        TokenFilter.reply(response, 403, error(refusal, "ForbiddenException", 403));
      }
    }

    /** null: pass the request on; "": answered here; else the refusal's message. */
    private String decide(Principal who, HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      String method = request.getMethod();
      String[] parts = request.getRequestURI().substring(1).split("/", -1);
      int size = parts.length;
      if (size < 2 || !"v1".equals(parts[0])) {
        return refuseWrite(who, "send this catalog request", "the admin's");
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
        return refuseWrite(who, "send this catalog request", "the admin's");
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
        return refuseWrite(who, "send this catalog request", "the admin's");
      }
      String table = ns + "." + RESTUtil.decodeString(parts[4]);
      if (parts.length == 6) {
        boolean metrics = "metrics".equals(parts[5]) && "POST".equals(method);
        return metrics ? loadable(who, table) : refuseWrite(who, "send this catalog request", "the admin's");
      }
      return switch (method) {
        case "GET" -> loadable(who, table);
        case "HEAD" -> who.tables().contains(table) ? null : invisible(who, table);
        case "DELETE" -> refuseWrite(who, "drop the table " + table, "DROP on " + table);
        default -> refuseWrite(who, "commit to the table " + table, "INSERT or ALTER on " + table);
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

    private static String refuseWrite(Principal who, String what, String permission) {
      return who.name() + " may not " + what + " through the catalog (" + permission + "): a principal's"
          + " catalog token only reads, whatever the policy grants. Hint: write as " + who.name()
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
      TokenFilter.reply(response, 200, JSON.createObjectNode().set("namespaces", shown).toString());
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
      TokenFilter.reply(response, 200, JSON.createObjectNode().set("identifiers", shown).toString());
    }

    private static String error(String message, String type, int code) {
      ObjectNode error = JSON.createObjectNode();
      error.putObject("error").put("message", message).put("type", type).put("code", code);
      return error.toString();
    }
  }

  /**
   * Checkpoints the SQLite WAL into catalog.db (TRUNCATE: the WAL file is emptied) every
   * LAKEHOUSE_CATALOG_CHECKPOINT_SECONDS and at shutdown, after the catalog is closed.
   * SQLite's own auto-checkpoint copies pages only once the WAL passes 1000 pages (4 MiB)
   * and never shrinks the file; this keeps catalog.db a complete catalog on its own.
   */
  static final class WalCheckpointer implements AutoCloseable {
    private final Connection connection;
    private final AutoCloseable catalog;
    private final ScheduledExecutorService timer;

    private WalCheckpointer(Connection connection, long seconds, AutoCloseable catalog) {
      this.connection = connection;
      this.catalog = catalog;
      this.timer = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "wal-checkpoint");
        thread.setDaemon(true);
        return thread;
      });
      timer.scheduleWithFixedDelay(() -> checkpoint("TRUNCATE"), seconds, seconds, TimeUnit.SECONDS);
      Runtime.getRuntime().addShutdownHook(new Thread(this::close, "wal-checkpoint-at-exit"));
    }

    /** A checkpointer for a jdbc:sqlite: URI (null for another database); closes catalog at exit. */
    static WalCheckpointer start(String uri, AutoCloseable catalog) throws SQLException {
      if (!uri.startsWith("jdbc:sqlite:")) {
        return null;
      }
      long seconds = Long.parseLong(System.getenv().getOrDefault("LAKEHOUSE_CATALOG_CHECKPOINT_SECONDS", "10"));
      return new WalCheckpointer(DriverManager.getConnection(uri), seconds, catalog);
    }

    synchronized void checkpoint(String mode) {
      try (Statement statement = connection.createStatement();
          ResultSet result = statement.executeQuery("PRAGMA wal_checkpoint(" + mode + ")")) {
        if (result.next() && result.getInt(1) != 0) {
          System.err.println("catalog WAL checkpoint (" + mode + ") deferred: a transaction was open.");
        }
      } catch (SQLException e) {
        System.err.println("catalog WAL checkpoint failed: " + e.getMessage());
      }
    }

    @Override
    public synchronized void close() {
      if (timer.isShutdown()) {
        return;
      }
      timer.shutdownNow();
      try {
        catalog.close(); // its connection's transactions end before the last checkpoint
      } catch (Exception e) {
        System.err.println("closing the catalog failed: " + e.getMessage());
      }
      checkpoint("TRUNCATE");
      try {
        connection.close();
      } catch (SQLException e) {
        System.err.println("closing the checkpoint connection failed: " + e.getMessage());
      }
    }
  }

  /** The catalog's FileIO, with *.metadata.json files kept in memory by location. */
  public static final class MetadataCache implements DelegateFileIO {
    static final String DELEGATE = "lakehouse.metadata-cache.delegate-io-impl";
    static final String MAX_BYTES = "lakehouse.metadata-cache.max-bytes";
    private DelegateFileIO delegate;
    private long maxBytes = 64L << 20;
    private long cachedBytes = 0;
    private final LinkedHashMap<String, byte[]> files = new LinkedHashMap<>(64, 0.75f, true);

    @Override
    public void initialize(Map<String, String> properties) {
      maxBytes = Long.parseLong(properties.getOrDefault(MAX_BYTES, String.valueOf(maxBytes)));
      delegate = (DelegateFileIO) CatalogUtil.loadFileIO(properties.get(DELEGATE), properties, new Configuration());
    }

    @Override
    public InputFile newInputFile(String path) {
      if (!path.endsWith(".metadata.json")) {
        return delegate.newInputFile(path);
      }
      byte[] bytes = cached(path);
      if (bytes == null) {
        bytes = read(delegate.newInputFile(path));
        remember(path, bytes);
      }
      return new InMemoryInputFile(path, bytes);
    }

    @Override
    public InputFile newInputFile(String path, long length) {
      return path.endsWith(".metadata.json") ? newInputFile(path) : delegate.newInputFile(path, length);
    }

    private synchronized byte[] cached(String path) {
      return files.get(path);
    }

    private synchronized void remember(String path, byte[] bytes) {
      if (bytes.length > maxBytes || files.containsKey(path)) {
        return;
      }
      files.put(path, bytes);
      cachedBytes += bytes.length;
      var eldest = files.entrySet().iterator();
      while (cachedBytes > maxBytes && eldest.hasNext()) {
        cachedBytes -= eldest.next().getValue().length;
        eldest.remove();
      }
    }

    private synchronized void forget(String path) {
      byte[] bytes = files.remove(path);
      if (bytes != null) {
        cachedBytes -= bytes.length;
      }
    }

    private static byte[] read(InputFile file) {
      try (InputStream in = file.newStream()) {
        return in.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public OutputFile newOutputFile(String path) {
      return delegate.newOutputFile(path);
    }

    @Override
    public void deleteFile(String path) {
      forget(path);
      delegate.deleteFile(path);
    }

    @Override
    public void deleteFiles(Iterable<String> paths) {
      for (String path : paths) {
        forget(path);
      }
      delegate.deleteFiles(paths);
    }

    @Override
    public Iterable<FileInfo> listPrefix(String prefix) {
      return delegate.listPrefix(prefix);
    }

    @Override
    public void deletePrefix(String prefix) {
      synchronized (this) {
        files.keySet().removeIf(path -> path.startsWith(prefix));
        cachedBytes = files.values().stream().mapToLong(b -> b.length).sum();
      }
      delegate.deletePrefix(prefix);
    }

    @Override
    public Map<String, String> properties() {
      return delegate.properties();
    }

    @Override
    public void close() {
      delegate.close();
    }
  }
}
