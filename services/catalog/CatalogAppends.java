/*
 * Appends through a principal's catalog token (governance on): see the class.
 */
package org.apache.iceberg.rest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.apache.iceberg.AppendFiles;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DataOperations;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.ManifestContent;
import org.apache.iceberg.ManifestFile;
import org.apache.iceberg.ManifestFiles;
import org.apache.iceberg.ManifestReader;
import org.apache.iceberg.MetadataUpdate;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.SnapshotRef;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableMetadata;
import org.apache.iceberg.TableMetadataParser;
import org.apache.iceberg.UpdateRequirement;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.rest.requests.UpdateTableRequest;

/**
 * A principal holding INSERT on a table it may read whole may append to it through the
 * catalog, and only append. The client's commit is not applied as sent: it names a
 * manifest list the client wrote, which could drop or rewrite the table's files. The
 * catalog checks that the commit is one appended snapshot on the current main branch,
 * reads the data files of the manifests the client added, checks each lies under the
 * table's location and its manifests hold no deletes, and appends those files itself
 * (a fast append of its own, with its own key): the table's existing files are kept
 * whatever the client's manifest list says.
 */
final class CatalogAppends {
  private static final ObjectMapper JSON = new ObjectMapper();

  private CatalogAppends() {}

  /** A checked append: the table and the data files to add. */
  record Checked(Table table, List<DataFile> files) {}

  /** The verdict on a commit: ``checked`` to apply, or a refusal (status, type, message). */
  record Verdict(Checked checked, int status, String type, String message) {
    static Verdict refuse(String message) {
      return new Verdict(null, 403, "ForbiddenException", message);
    }
  }

  /** Checks ``body`` (an UpdateTableRequest) as an append by ``who`` to ``table``. */
  static Verdict check(Table table, String who, String name, String body) {
    UpdateTableRequest request;
    try {
      request = RESTObjectMapper.mapper().readValue(body, UpdateTableRequest.class);
    } catch (IOException | RuntimeException e) {
      return new Verdict(null, 400, "BadRequestException", "Not a table commit: " + e.getMessage());
    }
    Snapshot added = appendedSnapshot(request.updates());
    if (added == null) {
      return Verdict.refuse(who + " may only append to " + name + " through the catalog (INSERT): this commit"
          + " does more than add one append snapshot to the main branch. Hint: other changes take the"
          + " admin's token, or go through lakehouse as " + who + ", which applies the policy.");
    }
    TableMetadata current = ((HasTableOperations) table).operations().current();
    Snapshot head = current.currentSnapshot();
    if (!Objects.equals(added.parentId(), head == null ? null : head.snapshotId())) {
      return new Verdict(null, 409, "CommitFailedException",
          "The table " + name + " changed since this append was prepared; retry it.");
    }
    try {
      for (UpdateRequirement requirement : request.requirements()) {
        requirement.validate(current);
      }
      return files(table, head, added, who, name);
    } catch (org.apache.iceberg.exceptions.CommitFailedException e) {
      return new Verdict(null, 409, "CommitFailedException", e.getMessage());
    } catch (UncheckedIOException | org.apache.iceberg.exceptions.NotFoundException e) {
      return new Verdict(null, 400, "BadRequestException",
          "The append's manifests could not be read: " + e.getMessage());
    }
  }

  /** The one append snapshot the updates add to main, else null. */
  private static Snapshot appendedSnapshot(List<MetadataUpdate> updates) {
    Snapshot added = null;
    MetadataUpdate.SetSnapshotRef ref = null;
    for (MetadataUpdate update : updates) {
      if (update instanceof MetadataUpdate.AddSnapshot add && added == null) {
        added = add.snapshot();
      } else if (update instanceof MetadataUpdate.SetSnapshotRef set && ref == null) {
        ref = set;
      } else {
        return null;
      }
    }
    boolean append = added != null && DataOperations.APPEND.equals(added.operation());
    boolean onMain = ref != null && SnapshotRef.MAIN_BRANCH.equals(ref.name()) && "branch".equalsIgnoreCase(ref.type());
    return append && onMain && ref.snapshotId() == added.snapshotId() ? added : null;
  }

  private static Verdict files(Table table, Snapshot head, Snapshot added, String who, String name) {
    FileIO io = table.io();
    Set<String> kept = new HashSet<>();
    if (head != null) {
      head.allManifests(io).forEach(manifest -> kept.add(manifest.path()));
    }
    String root = table.location().replaceAll("/+$", "") + "/";
    List<DataFile> files = new ArrayList<>();
    for (ManifestFile manifest : added.allManifests(io)) {
      if (kept.contains(manifest.path())) {
        continue;
      }
      if (manifest.content() != ManifestContent.DATA || !table.specs().containsKey(manifest.partitionSpecId())) {
        return Verdict.refuse(who + " may only append data files to " + name + ": the commit adds a delete"
            + " manifest or one of an unknown partition spec (" + manifest.path() + ").");
      }
      String outside = collect(manifest, io, table, root, files);
      if (outside != null) {
        return Verdict.refuse(who + " may not append " + outside + " to " + name + ": it lies outside the"
            + " table's location " + root + " (a file of another table would be read as this one's).");
      }
    }
    return new Verdict(new Checked(table, files), 200, null, null);
  }

  /** Adds the manifest's live data files to ``files``; the first path outside ``root``, else null. */
  private static String collect(ManifestFile manifest, FileIO io, Table table, String root, List<DataFile> files) {
    if (!under(root, manifest.path())) {
      return manifest.path();
    }
    try (ManifestReader<DataFile> reader = ManifestFiles.read(manifest, io, table.specs())) {
      for (DataFile file : reader) {
        if (!under(root, file.location())) {
          return file.location();
        }
        files.add(file.copy());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return null;
  }

  /**
   * Whether ``path`` lies under ``root`` (which ends with "/"): no "." or ".." segment or
   * empty one after it, which an HTTP client or S3 server may resolve to another table.
   */
  static boolean under(String root, String path) {
    if (!path.startsWith(root) || path.length() == root.length()) {
      return false;
    }
    for (String segment : path.substring(root.length()).split("/", -1)) {
      if (segment.isEmpty() || ".".equals(segment) || "..".equals(segment)) {
        return false;
      }
    }
    return true;
  }

  /** Appends the checked files (the catalog's own fast append); the commit's JSON answer. */
  static String apply(Checked checked) throws IOException {
    AppendFiles append = checked.table().newFastAppend();
    checked.files().forEach(append::appendFile);
    append.commit();
    TableMetadata now = ((HasTableOperations) checked.table()).operations().current();
    ObjectNode answer = JSON.createObjectNode().put("metadata-location", now.metadataFileLocation());
    answer.set("metadata", JSON.readTree(TableMetadataParser.toJson(now)));
    return answer.toString();
  }
}
