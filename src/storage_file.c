/*-------------------------------------------------------------------------
 *
 * storage_file.c
 *	  The file:// storage backend: objects are files under the server's
 *	  directory.  Symlink-safe (every component opened with openat +
 *	  O_NOFOLLOW, new files with O_EXCL), atomic (hidden temporary file,
 *	  fsync, rename, fsync of the directory), staged writes published by
 *	  the rename, removal of temporary files left by crashed attempts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "storage_backend.h"

#define FILE_BUF_SIZE		(64 * 1024)

/* st->priv: the absolute directory, no trailing '/' */
#define FILE_DIR(st)		((char *) (st)->priv)

typedef struct FileWriter
{
	TfObjectWriter hdr;
	char	   *key;
	int			fd;
	char	   *path;
	char	   *tmppath;
	int			dirfd;			/* the key's directory (see file_open_parent) */
	char	   *name;			/* last component of the key */
	char	   *tmpname;		/* its temporary file, in dirfd */
	char	   *buf;
	size_t		buflen;
	int64		size;
	bool		done;
	bool		finished;
	MemoryContextCallback cb;
} FileWriter;

typedef struct FileReader
{
	TfObjectReader hdr;
	int			fd;
	MemoryContextCallback cb;
} FileReader;

static char *
file_path(TfStorage *st, const char *key)
{
	return psprintf("%s/%s", strcmp(FILE_DIR(st), "/") == 0 ? "" : FILE_DIR(st), key);
}

static char *
file_describe(TfStorage *st, const char *key)
{
	return psprintf("file://%s", file_path(st, key));
}

static void
file_writer_cleanup(void *arg)
{
	FileWriter *w = (FileWriter *) arg;

	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (!w->done && w->tmpname && w->dirfd >= 0)
		unlinkat(w->dirfd, w->tmpname, 0);
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
	w->done = true;
}

/*
 * file:// paths never follow a symbolic link inside the server's directory.
 * The directory itself (the url, set by a superuser) may contain links;
 * below it, every component of a key is opened relative to its parent with
 * O_NOFOLLOW (a planted link is an ERROR), and new files are created with
 * O_EXCL, so a link placed inside the directory can never redirect a read,
 * a write or a delete outside it.  See docs/security.md.
 */
static bool
file_is_link(int dfd, const char *name)
{
	struct stat sb;

	return fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);
}

static void
file_refuse_link(TfStorage *st, const char *key, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("object \"%s\": \"%s\" is a symbolic link",
					file_describe(st, key), name),
			 errdetail("taskflow does not follow symbolic links inside the directory of a file:// storage server."),
			 errhint("Replace the link by a real directory or file, or point the server's url at the real directory.")));
}

/*
 * Open the directory that holds key (creating the missing directories when
 * create); *base is set to the key's last component.  Returns the directory
 * fd (the caller closes it), or -1 with errno ENOENT/ENOTDIR when a
 * directory is missing and !create.
 */
static int
file_open_parent(TfStorage *st, const char *key, bool create, const char **base)
{
	char	   *rel = pstrdup(key);
	char	   *comp = rel;
	char	   *slash;
	int			dfd;

	if (create && pg_mkdir_p(pstrdup(FILE_DIR(st)), pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", FILE_DIR(st))));
	dfd = open(FILE_DIR(st), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
	{
		if (!create && (errno == ENOENT || errno == ENOTDIR))
			return -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", FILE_DIR(st))));
	}
	while ((slash = strchr(comp, '/')) != NULL)
	{
		int			next;
		int			save_errno;

		*slash = '\0';
		next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create)
		{
			if (mkdirat(dfd, comp, pg_dir_create_mode) != 0 && errno != EEXIST)
			{
				save_errno = errno;
				close(dfd);
				errno = save_errno;
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory for object \"%s\": %m",
								file_describe(st, key))));
			}
			next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0)
		{
			bool		link;

			save_errno = errno;
			link = file_is_link(dfd, comp);
			close(dfd);
			if (link)
				file_refuse_link(st, key, comp);
			errno = save_errno;
			if (!create && (errno == ENOENT || errno == ENOTDIR))
				return -1;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\" of object \"%s\": %m",
							comp, file_describe(st, key))));
		}
		close(dfd);
		dfd = next;
		comp = slash + 1;
	}
	*base = key + (comp - rel);
	return dfd;
}

/*
 * Temporary name of an object being written: a hidden file in the same
 * directory, ".<name>.tmp.<pid>".  Spark, Hive and Trino skip names starting
 * with "." or "_"; DuckDB's globs do not, but the name neither starts with
 * "part-" nor ends in the format's extension, so "part-*" / "*.csv.gz"
 * patterns never match it.
 */
static char *
file_temp_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	int			dirlen = slash ? (int) (slash - path + 1) : 0;

	return psprintf("%.*s.%s.tmp.%d", dirlen, path, path + dirlen, MyProcPid);
}

static FileWriter *
file_writer_begin(TfStorage *st, const char *key)
{
	FileWriter *w = palloc0(sizeof(FileWriter));
	const char *base;
	int			flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | PG_BINARY;

	w->hdr.st = st;
	w->key = pstrdup(key);
	w->path = file_path(st, key);
	w->tmppath = file_temp_path(w->path);
	w->buf = palloc(FILE_BUF_SIZE);
	w->fd = -1;
	w->dirfd = -1;
	w->cb.func = file_writer_cleanup;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	w->dirfd = file_open_parent(st, key, true, &base);
	w->name = pstrdup(base);
	/* the hidden temporary name of file_temp_path(), in the same directory */
	w->tmpname = psprintf(".%s.tmp.%d", base, MyProcPid);
	w->fd = openat(w->dirfd, w->tmpname, flags, pg_file_create_mode);
	/* a leftover of an earlier backend with our pid (or a planted link): remove it */
	if (w->fd < 0 && errno == EEXIST &&
		(unlinkat(w->dirfd, w->tmpname, 0) == 0 || errno == ENOENT))
		w->fd = openat(w->dirfd, w->tmpname, flags, pg_file_create_mode);
	if (w->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", w->tmppath)));
	return w;
}

static void
file_flush(FileWriter *w)
{
	size_t		off = 0;

	while (off < w->buflen)
	{
		ssize_t		n = write(w->fd, w->buf + off, w->buflen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write to file \"%s\": %m", w->tmppath)));
		}
		off += n;
	}
	w->buflen = 0;
}

static void
file_writer_write(FileWriter *w, const char *data, size_t len)
{
	while (len > 0)
	{
		size_t		n = Min(len, FILE_BUF_SIZE - w->buflen);

		memcpy(w->buf + w->buflen, data, n);
		w->buflen += n;
		w->size += n;
		data += n;
		len -= n;
		if (w->buflen == FILE_BUF_SIZE)
		{
			CHECK_FOR_INTERRUPTS();
			file_flush(w);
		}
	}
}

/*
 * Rename the written temporary file into place, relative to its directory
 * (no path re-resolution: see file_open_parent), and fsync the directory.
 */
static void
file_writer_rename(FileWriter *w)
{
	if (renameat(w->dirfd, w->tmpname, w->dirfd, w->name) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m", w->tmppath, w->path)));
	w->done = true;
	if (pg_fsync(w->dirfd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync the directory of \"%s\": %m", w->path)));
	close(w->dirfd);
	w->dirfd = -1;
}

static void
file_writer_finish(FileWriter *w, int64 *size, char **etag)
{
	file_flush(w);
	if (pg_fsync(w->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", w->tmppath)));
	if (close(w->fd) != 0)
	{
		w->fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", w->tmppath)));
	}
	w->fd = -1;
	file_writer_rename(w);
	if (size)
		*size = w->size;
	if (etag)
		*etag = NULL;
}

/* staged: the data is durable under the temporary name, not yet visible */
static void
file_writer_stage(FileWriter *w, int64 *size, char **etag)
{
	file_flush(w);
	if (pg_fsync(w->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", w->tmppath)));
	if (close(w->fd) != 0)
	{
		w->fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", w->tmppath)));
	}
	w->fd = -1;
	w->finished = true;
	if (size)
		*size = w->size;
	if (etag)
		*etag = NULL;
}

static void
file_reader_cleanup(void *arg)
{
	FileReader *r = (FileReader *) arg;

	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static FileReader *
file_reader_begin(TfStorage *st, const char *key)
{
	FileReader *r = palloc0(sizeof(FileReader));
	const char *base;
	int			dfd = file_open_parent(st, key, false, &base);

	r->hdr.st = st;
	r->fd = -1;
	if (dfd >= 0)
	{
		int			save_errno;

		r->fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | PG_BINARY, 0);
		save_errno = errno;
		if (r->fd < 0 && file_is_link(dfd, base))
		{
			close(dfd);
			file_refuse_link(st, key, base);
		}
		close(dfd);
		errno = save_errno;
	}
	if (r->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open object \"%s\": %m",
						file_describe(st, key))));
	r->cb.func = file_reader_cleanup;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &r->cb);
	return r;
}

static size_t
file_reader_read(FileReader *r, char *buf, size_t len)
{
	for (;;)
	{
		ssize_t		n = read(r->fd, buf, len);

		if (n >= 0)
			return (size_t) n;
		if (errno != EINTR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read object: %m")));
	}
}

static bool
is_temp_name(const char *name)
{
	const char *t = strstr(name, ".tmp.");

	while (t)
	{
		const char *d = t + 5;

		if (*d && strspn(d, "0123456789") == strlen(d))
			return true;
		t = strstr(t + 1, ".tmp.");
	}
	return false;
}

static bool
file_stat(TfStorage *st, const char *key, TfObjectInfo *info)
{
	struct stat sb;
	const char *base;
	int			dfd = file_open_parent(st, key, false, &base);
	int			rc;

	if (dfd < 0)
		return false;
	rc = fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (rc != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat object \"%s\": %m", file_describe(st, key))));
	}
	if (!S_ISREG(sb.st_mode))
		return false;
	if (info)
	{
		info->key = pstrdup(key);
		info->size = (int64) sb.st_size;
		info->last_modified = time_t_to_timestamptz(sb.st_mtime);
		info->etag = NULL;
	}
	return true;
}

/* an open directory of file_walk, closed on ERROR by a reset callback */
typedef struct FileWalkDir
{
	DIR		   *dir;
	MemoryContextCallback cb;
} FileWalkDir;

static void
file_walk_close(void *arg)
{
	FileWalkDir *d = (FileWalkDir *) arg;

	if (d->dir)
		closedir(d->dir);
	d->dir = NULL;
}

/*
 * Recursive walk of the directory open as dfd (relative name rel; the walk
 * takes the fd) collecting keys under prefix.  Entries are examined and
 * opened relative to their directory without following links (see
 * file_open_parent), so a directory swapped for a link meanwhile is not
 * entered.
 */
static void
file_walk(int dfd, const char *rel, const char *prefix, List **result)
{
	FileWalkDir *d = palloc0(sizeof(FileWalkDir));
	struct dirent *de;
	size_t		plen = strlen(prefix);

	d->dir = fdopendir(dfd);
	if (d->dir == NULL)
	{
		close(dfd);
		return;
	}
	d->cb.func = file_walk_close;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &d->cb);
	while ((de = readdir(d->dir)) != NULL)
	{
		char	   *key;
		struct stat sb;
		size_t		klen;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		CHECK_FOR_INTERRUPTS();
		key = rel[0] ? psprintf("%s/%s", rel, de->d_name) : pstrdup(de->d_name);
		if (fstatat(dirfd(d->dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;			/* vanished meanwhile */
		klen = strlen(key);
		if (S_ISDIR(sb.st_mode))
		{
			/* descend only where keys matching the prefix can be */
			if (strncmp(key, prefix, Min(klen, plen)) == 0)
			{
				int			sub = openat(dirfd(d->dir), de->d_name,
										 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

				if (sub >= 0)
					file_walk(sub, key, prefix, result);
			}
		}
		else if (S_ISREG(sb.st_mode) && strncmp(key, prefix, plen) == 0 &&
				 !is_temp_name(de->d_name))
		{
			TfObjectInfo *info = palloc0(sizeof(TfObjectInfo));

			info->key = key;
			info->size = (int64) sb.st_size;
			info->last_modified = time_t_to_timestamptz(sb.st_mtime);
			*result = lappend(*result, info);
		}
	}
	closedir(d->dir);
	d->dir = NULL;
}

static int
info_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((TfObjectInfo *) lfirst(a))->key, ((TfObjectInfo *) lfirst(b))->key);
}


/* ----------------------------------------------------------------
 * The backend
 * ----------------------------------------------------------------
 */
static void
file_parse_url(const char *url, TfServerOpts *o)
{
	char	   *dir = pstrdup(url + 7);
	size_t		n;

	if (dir[0] != '/')
		tf_storage_bad_value("url", url, "A file url must name an absolute directory on the database server, like file:///var/lib/taskflow/archive.");
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	if (n > 1 && tf_storage_has_bad_component(dir + 1, false))
		tf_storage_bad_value("url", url, "The directory must not contain empty, \".\" or \"..\" components.");
	o->dir = dir;
}

static void
file_open(TfStorage *st, const TfServerOpts *o, List *um_options)
{
	st->priv = pstrdup(o->dir);
}

static TfObjectWriter *
file_be_writer_begin(TfStorage *st, const char *key, bool staged)
{
	FileWriter *w = file_writer_begin(st, key);

	w->hdr.staged = staged;
	return &w->hdr;
}

static void
file_be_writer_write(TfObjectWriter *w, const char *data, size_t len)
{
	file_writer_write((FileWriter *) w, data, len);
}

static void
file_be_writer_finish(TfObjectWriter *w, int64 *size, char **etag)
{
	file_writer_finish((FileWriter *) w, size, etag);
}

static void
file_be_writer_stage(TfObjectWriter *w, int64 *size, char **etag)
{
	file_writer_stage((FileWriter *) w, size, etag);
}

static void
file_be_writer_publish(TfObjectWriter *wh, char **etag)
{
	FileWriter *w = (FileWriter *) wh;

	if (etag)
		*etag = NULL;
	if (!w->hdr.staged || !w->finished || w->done)
		elog(ERROR, "object \"%s\" is not ready to be published", w->path);
	/* the data was fsynced when staged */
	file_writer_rename(w);
}

static void
file_be_writer_abort(TfObjectWriter *w)
{
	file_writer_cleanup(w);
}

/* parallel export (storage.h): the token is the hidden temporary name */
static char *
file_be_writer_handoff(TfObjectWriter *wh)
{
	FileWriter *w = (FileWriter *) wh;
	char	   *token;

	if (!w->hdr.staged || !w->finished || w->done)
		elog(ERROR, "object \"%s\" cannot be handed off", w->path);
	token = pstrdup(w->tmpname);
	w->done = true;				/* disowned: cleanup leaves the file */
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
	return token;
}

static TfObjectWriter *
file_be_writer_adopt(TfStorage *st, const char *key, const char *token, int64 size)
{
	FileWriter *w;
	const char *base;
	const char *slash;
	size_t		blen;
	char	   *path = file_path(st, key);

	/*
	 * The token first: only ".<name>.tmp.<pid>" in the key's own directory.
	 * Nothing is opened and no cleanup (which unlinks the temporary name) is
	 * registered for a token that does not name the key's own hidden file.
	 */
	base = strrchr(key, '/');
	base = base ? base + 1 : key;
	blen = strlen(base);
	if (token[0] != '.' || strncmp(token + 1, base, blen) != 0 ||
		strncmp(token + 1 + blen, ".tmp.", 5) != 0 ||
		token[6 + blen] == '\0' ||
		strspn(token + 6 + blen, "0123456789") != strlen(token + 6 + blen))
		elog(ERROR, "invalid handoff token for \"%s\"", path);

	w = palloc0(sizeof(FileWriter));
	w->hdr.st = st;
	w->hdr.staged = true;
	w->key = pstrdup(key);
	w->path = path;
	w->fd = -1;
	w->dirfd = -1;
	w->finished = true;
	w->size = size;
	w->tmpname = pstrdup(token);
	slash = strrchr(w->path, '/');
	w->tmppath = psprintf("%.*s%s", slash ? (int) (slash - w->path + 1) : 0, w->path, token);
	w->dirfd = file_open_parent(st, key, false, &base);
	/* from here on the hidden file is ours: an ERROR removes it */
	w->cb.func = file_writer_cleanup;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	w->name = pstrdup(base);
	return &w->hdr;
}

static void
file_put(TfStorage *st, const char *key, const char *data, size_t len)
{
	FileWriter *w = file_writer_begin(st, key);

	file_writer_write(w, data, len);
	file_writer_finish(w, NULL, NULL);
}

static TfObjectReader *
file_be_reader_begin(TfStorage *st, const char *key)
{
	return &file_reader_begin(st, key)->hdr;
}

static size_t
file_be_reader_read(TfObjectReader *r, char *buf, size_t len)
{
	return file_reader_read((FileReader *) r, buf, len);
}

static void
file_be_reader_end(TfObjectReader *r)
{
	file_reader_cleanup(r);
}

static List *
file_list(TfStorage *st, const char *prefix)
{
	List	   *result = NIL;
	int			dfd = open(FILE_DIR(st), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0 && errno != ENOENT && errno != ENOTDIR)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", FILE_DIR(st))));
	if (dfd >= 0)
		file_walk(dfd, "", prefix, &result);
	list_sort(result, info_cmp);
	return result;
}

static void
file_delete(TfStorage *st, const char *key)
{
	struct stat sb;
	const char *base;
	int			dfd = file_open_parent(st, key, false, &base);
	int			save_errno;

	if (dfd < 0)
		return;					/* no such directory: no such object */
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
	{
		close(dfd);
		return;					/* not an object */
	}
	if (unlinkat(dfd, base, 0) == 0 || errno == ENOENT || errno == ENOTDIR)
	{
		close(dfd);
		return;
	}
	save_errno = errno;
	close(dfd);
	errno = save_errno;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not delete object \"%s\": %m",
					file_describe(st, key))));
}

/* temporary files (".<name>.tmp.<pid>") of our object names in prefix's directory */
static int
file_abort_stale(TfStorage *st, const char *prefix,
				 bool (*is_ours) (const char *name, bool hidden_ok))
{
	int			removed = 0;
	const char *base;
	int			dfd = file_open_parent(st, prefix, false, &base);
	FileWalkDir *d;
	struct dirent *de;

	/* the prefix's directory, opened without following links */
	if (dfd < 0)
		return 0;
	d = palloc0(sizeof(FileWalkDir));
	d->dir = fdopendir(dfd);
	if (d->dir == NULL)
	{
		close(dfd);
		return 0;
	}
	d->cb.func = file_walk_close;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &d->cb);
	while ((de = readdir(d->dir)) != NULL)
	{
		char	   *key;

		CHECK_FOR_INTERRUPTS();

		/*
		 * every temporary file there: this attempt has not created any yet
		 * (also removes 1.0's visible "<name>.tmp.<pid>" files)
		 */
		if (!is_temp_name(de->d_name) || !is_ours(de->d_name, true))
			continue;
		key = psprintf("%.*s%s", (int) (base - prefix), prefix, de->d_name);
		if (unlinkat(dirfd(d->dir), de->d_name, 0) != 0 && errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not remove stale temporary file of %s: %m",
							file_describe(st, key))));
		ereport(LOG,
				(errmsg("removed stale temporary file of %s", file_describe(st, key))));
		removed++;
	}
	file_walk_close(d);
	return removed;
}

static bool
file_etag_is_md5(const char *etag)
{
	return false;				/* file:// objects have no etag */
}

const TfStorageBackend tf_storage_file_backend = {
	.scheme = "file://",
	.superuser_only = true,
	.needs_user_mapping = false,
	.parse_url = file_parse_url,
	.open = file_open,
	.describe = file_describe,
	.writer_begin = file_be_writer_begin,
	.writer_write = file_be_writer_write,
	.writer_finish = file_be_writer_finish,
	.writer_stage = file_be_writer_stage,
	.writer_publish = file_be_writer_publish,
	.writer_abort = file_be_writer_abort,
	.writer_handoff = file_be_writer_handoff,
	.writer_adopt = file_be_writer_adopt,
	.put = file_put,
	.reader_begin = file_be_reader_begin,
	.reader_read = file_be_reader_read,
	.reader_end = file_be_reader_end,
	.head = file_stat,
	.list = file_list,
	.delete = file_delete,
	.abort_stale = file_abort_stale,
	.etag_is_md5 = file_etag_is_md5,
};
