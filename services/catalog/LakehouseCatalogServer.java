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
 * what each may see and load (CatalogPrincipalRules, re-read when the file changes); a principal's
 * token only reads: anything else is 403 ForbiddenException naming the principal.
 *
 * The SQLite catalog database runs in WAL mode and its WAL is checkpointed (TRUNCATE)
 * every LAKEHOUSE_CATALOG_CHECKPOINT_SECONDS and at shutdown by WalCheckpointer, so
 * catalog.db alone holds the catalog and the WAL stays small.
 */
package org.apache.iceberg.rest;

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
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
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
    String accessFile = System.getenv().getOrDefault(CatalogPrincipalRules.FILE_VARIABLE, "");
    String auditDir = System.getenv().getOrDefault(CatalogPrincipalRules.AUDIT_VARIABLE, "");
    CatalogPrincipalRules rules = accessFile.isEmpty() ? null
        : new CatalogPrincipalRules(Path.of(accessFile), catalog, auditDir.isEmpty() ? null : Path.of(auditDir));
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
    private final CatalogPrincipalRules rules;

    TokenFilter(String token, CatalogPrincipalRules rules) {
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
      CatalogPrincipalRules.Principal principal = rules == null ? null : rules.principal(givenDigest);
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
